"""Revisions of the stock service's schema, oldest first."""

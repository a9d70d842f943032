"""Revisions of the order service's schema, oldest first."""

"""Revisions of the payment service's schema, oldest first."""

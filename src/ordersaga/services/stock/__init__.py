"""The stock service."""

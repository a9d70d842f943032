"""Migrations of the stock service's database."""

"""Migrations of the order service's database."""

"""Migrations of the payment service's database."""

"""Alembic environment of the payment service's database."""

from ordersaga.migrations.environment import run_migrations
from ordersaga.services.payment.tables import metadata

run_migrations(metadata)

"""Alembic environment of the stock service's database."""

from ordersaga.migrations.environment import run_migrations
from ordersaga.services.stock.tables import metadata

run_migrations(metadata)

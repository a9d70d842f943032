"""Alembic environment of the order service's database."""

from ordersaga.migrations.environment import run_migrations
from ordersaga.services.order.tables import metadata

run_migrations(metadata)

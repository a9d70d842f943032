"""Alembic environment of the orchestrator service's database."""

from ordersaga.migrations.environment import run_migrations
from ordersaga.services.orchestrator.tables import metadata

run_migrations(metadata)

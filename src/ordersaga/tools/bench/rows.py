"""Row counts of every table of every service, and what each table is expected to do
over a long run."""

from collections.abc import Mapping
from enum import StrEnum

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings
from ordersaga.services.registry import SERVICE_NAMES, service_spec


class Kind(StrEnum):
    PRUNED = "pruned"  # kept for a retention window, then deleted in the background
    TRANSIENT = "transient"  # emptied as its work is done (the outbox by the relay)
    RECORD = "record"  # the business record: one row per order, kept for good
    REFERENCE = "reference"  # catalog, stock, balances: a row per product or user


KINDS = {
    "processed_messages": Kind.PRUNED,
    "saga_instances": Kind.PRUNED,
    "saga_history": Kind.PRUNED,
    "outbox": Kind.TRANSIENT,
    "outbox_failed": Kind.TRANSIENT,
    "orders": Kind.RECORD,
    "reservations": Kind.RECORD,
    "payments": Kind.RECORD,
}


def kind_of(name: str) -> Kind:
    """The kind of the table ``service.table``; tables not listed are reference data."""
    return KINDS.get(name.split(".", 1)[1], Kind.REFERENCE)


def service_tables(settings: Settings) -> dict[str, list[Table]]:
    """Every table of every service, by service."""
    return {
        name: list(service_spec(name, settings).metadata.sorted_tables) for name in SERVICE_NAMES
    }


async def count_rows(
    engines: Mapping[str, AsyncEngine], tables: Mapping[str, list[Table]]
) -> dict[str, int]:
    """``{"service.table": rows}`` for every table, one connection per service."""
    counts: dict[str, int] = {}
    for service, service_tables_ in tables.items():
        async with engines[service].connect() as conn:
            for table in service_tables_:
                query = select(func.count()).select_from(table)
                counts[f"{service}.{table.name}"] = int((await conn.execute(query)).scalar_one())
    return counts


SHORT = {"processed_messages": "inbox", "saga_instances": "sagas", "saga_history": "history"}


def short_name(table: str) -> str:
    """``orchestrator.processed_messages`` → ``orchestrator inbox``."""
    service, name = table.split(".", 1)
    return f"{service} {SHORT.get(name, name)}"

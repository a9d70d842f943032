"""The order tables stay portable: microsecond UTC timestamps on every database."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import registry
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateTable

from ordersaga.db.timestamps import UtcDateTime
from ordersaga.services.order.tables import orders, products


def dialect(name: str) -> Dialect:
    """A dialect without its driver: enough to compile DDL and run type conversions."""
    dialect_class: type[Dialect] = registry.load(name)
    return dialect_class()


MOMENT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))


def ddl(dialect: Dialect) -> str:
    return str(CreateTable(orders).compile(dialect=dialect))


def test_mariadb_keeps_microseconds() -> None:
    assert "created_at DATETIME(6) NOT NULL" in ddl(dialect("mysql"))


def test_postgresql_stores_time_zone() -> None:
    assert "created_at TIMESTAMP WITH TIME ZONE NOT NULL" in ddl(dialect("postgresql"))


def test_idempotency_key_is_unique_and_amount_is_decimal() -> None:
    text = ddl(dialect("postgresql"))
    assert "UNIQUE (idempotency_key)" in text
    assert "amount NUMERIC(12, 2) NOT NULL" in text
    assert "price NUMERIC(12, 2)" in str(
        CreateTable(products).compile(dialect=dialect("postgresql"))
    )


def test_orders_indexed_by_user_and_status() -> None:
    assert {tuple(c.name for c in i.columns) for i in orders.indexes} == {("user_id",), ("status",)}


@pytest.mark.parametrize("name", ["mysql", "sqlite"])
def test_stored_as_naive_utc_where_no_offset_is_kept(name: str) -> None:
    column = UtcDateTime()

    bound = column.process_bind_param(MOMENT, dialect(name))
    loaded = column.process_result_value(bound, dialect(name))

    assert bound == datetime(2024, 5, 6, 5, 8, 9, 123456)
    assert loaded == MOMENT
    assert loaded is not None and loaded.tzinfo is UTC


def test_postgresql_gets_aware_utc() -> None:
    bound = UtcDateTime().process_bind_param(MOMENT, dialect("postgresql"))

    assert bound == MOMENT
    assert bound.tzinfo is UTC


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        UtcDateTime().process_bind_param(datetime(2024, 1, 1), dialect("sqlite"))

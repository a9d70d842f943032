"""Engines: no rollback after a finished transaction, still one inside one."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Column, Integer, MetaData, Table, insert, select
from sqlalchemy.pool import PoolResetState

from ordersaga.db.engine import _roll_back_if_in_transaction, make_engine, sqlite_url

metadata = MetaData()
rows = Table("rows", metadata, Column("id", Integer, primary_key=True, autoincrement=False))


@dataclass
class FakeMysqlConnection:
    """What aiomysql tells from the server's last status: inside a transaction or not."""

    in_transaction: bool

    def get_transaction_status(self) -> bool:
        return self.in_transaction


@dataclass
class FakeRecord:
    driver_connection: Any


@dataclass
class FakeDbapiConnection:
    rollbacks: list[str] = field(default_factory=list)

    def rollback(self) -> None:
        self.rollbacks.append("rollback")


def returned(connection: FakeDbapiConnection, driver: Any, *, ended: bool = False) -> None:
    state = PoolResetState(transaction_was_reset=ended, terminate_only=False, asyncio_safe=True)
    _roll_back_if_in_transaction(cast(Any, connection), cast(Any, FakeRecord(driver)), state)


def test_a_connection_outside_a_transaction_is_not_rolled_back() -> None:
    connection = FakeDbapiConnection()
    returned(connection, FakeMysqlConnection(in_transaction=False))
    assert connection.rollbacks == []


def test_a_connection_inside_a_transaction_is_rolled_back() -> None:
    connection = FakeDbapiConnection()
    returned(connection, FakeMysqlConnection(in_transaction=True))
    assert connection.rollbacks == ["rollback"]


def test_a_driver_that_cannot_tell_is_rolled_back() -> None:
    connection = FakeDbapiConnection()
    returned(connection, object())
    assert connection.rollbacks == ["rollback"]


def test_a_transaction_its_connection_ended_is_not_rolled_back_again() -> None:
    connection = FakeDbapiConnection()
    returned(connection, FakeMysqlConnection(in_transaction=True), ended=True)
    assert connection.rollbacks == []


async def test_committed_work_stays_and_abandoned_work_is_undone(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path / "stock.sqlite3"))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(insert(rows), {"id": 1})
        async with engine.connect() as conn:  # closed without a commit
            await conn.execute(insert(rows), {"id": 2})
        async with engine.connect() as conn:
            ids = (await conn.scalars(select(rows.c.id))).all()
    finally:
        await engine.dispose()
    assert ids == [1]

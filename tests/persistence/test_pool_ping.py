"""A pooled connection whose server end died: pinged and replaced after lying idle, and
reported as a disconnect (the pool renewed) when it was in steady use."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.db import engine as engines
from tests.persistence.conftest import Databases

SERVERS = ["postgresql", "mariadb"]


async def session_id(engine: AsyncEngine) -> int:
    """The server's id of the connection a transaction of ``engine`` runs on."""
    ask = (
        "SELECT pg_backend_pid()"
        if engine.dialect.name == "postgresql"
        else "SELECT CONNECTION_ID()"
    )
    async with engine.begin() as conn:
        found: int = (await conn.execute(text(ask))).scalar_one()
    return found


async def kill(db: Databases, victim: int) -> None:
    """End session ``victim`` from another connection, as a server restart would."""
    other = db.engine("stock")
    async with other.begin() as conn:
        if other.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
        else:
            await conn.execute(text(f"KILL {int(victim)}"))


@pytest.mark.parametrize("backend", SERVERS)
async def test_a_connection_that_died_while_idle_is_replaced_on_checkout(
    db: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engines, "PING_AFTER_IDLE", 0.0)
    engine = db.engine("stock")
    first = await session_id(engine)
    await kill(db, first)

    again = await session_id(engine)  # no error: the ping found it dead

    assert again != first


@pytest.mark.parametrize("backend", SERVERS)
async def test_a_connection_in_steady_use_is_not_pinged_and_its_death_renews_the_pool(
    db: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engines, "PING_AFTER_IDLE", 3600.0)
    engine = db.engine("stock")
    first = await session_id(engine)
    await kill(db, first)

    with pytest.raises(DBAPIError) as failed:
        await session_id(engine)
    assert failed.value.connection_invalidated

    assert await session_id(engine) != first  # the retry gets a new connection

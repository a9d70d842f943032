"""The saga store on every backend: versions that refuse lost updates, locks, due sagas."""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import uuid4

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ordersaga.saga.state import HistoryEntry, SagaState, SagaStatus
from ordersaga.saga.store import LockedSaga, SagaStore, StaleSaga
from ordersaga.services.orchestrator.tables import saga_history, saga_instances
from tests.persistence.conftest import Databases
from tests.persistence.lock_waits import session_id, until_waiting_for_a_lock
from tests.persistence.support import count

STORE = SagaStore(saga_instances, saga_history, "place-order")
NOW = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
ENTRY = HistoryEntry("deadline", "timed-out", SagaStatus.RUNNING, SagaStatus.COMPENSATING, 0)

# Where one transaction can wait for another's row lock. Not SQLite: it has one writer
# and an engine has one connection, so the embedded orchestrator's transactions run
# one after the other, never side by side, and each reads what the last committed.
ROW_LOCKING_BACKENDS = ["postgresql", "mariadb"]


def saga(deadline: datetime | None = NOW, status: SagaStatus = SagaStatus.RUNNING) -> SagaState:
    saga_id = str(uuid4())
    return SagaState(
        saga_id=saga_id,
        status=status,
        step=0,
        data={"orderID": saga_id, "userID": 1, "amount": "20.00"},
        deadline=deadline,
        traceparent=f"00-{uuid4().hex}-{uuid4().hex[:16]}-01",
    )


async def inserted(engine: AsyncEngine, *states: SagaState) -> None:
    async with engine.begin() as conn:
        for state in states:
            await STORE.insert(conn, state, NOW)


async def load(engine: AsyncEngine, saga_id: str) -> SagaState | None:
    async with engine.begin() as conn:
        return await STORE.load_for_update(conn, saga_id)


async def test_a_saga_reads_back_as_it_was_stored(db: Databases) -> None:
    engine = await db.fresh("orchestrator")
    state = saga(deadline=NOW + timedelta(seconds=30))

    await inserted(engine, state)

    assert await load(engine, state.saga_id) == state
    assert await load(engine, str(uuid4())) is None


async def test_sagas_locked_together_read_back_as_stored_with_their_times(
    db: Databases,
) -> None:
    engine = await db.fresh("orchestrator")
    waiting = saga(deadline=NOW + timedelta(seconds=30))
    without_deadline = saga(deadline=None)
    await inserted(engine, waiting)
    await inserted(engine, without_deadline)

    async with engine.begin() as conn:
        wanted = [waiting.saga_id, without_deadline.saga_id, str(uuid4())]
        locked = await STORE.load_many_locked(conn, wanted)

    assert {i: s.state for i, s in locked.items()} == {
        waiting.saga_id: waiting,
        without_deadline.saga_id: without_deadline,
    }
    assert {(s.created_at, s.updated_at) for s in locked.values()} == {(NOW, NOW)}
    assert all(
        s.created_at is not None and s.created_at.utcoffset() == timedelta(0)
        for s in locked.values()
    )


async def test_a_saga_is_inserted_once(db: Databases) -> None:
    engine = await db.fresh("orchestrator")
    state = saga()
    await inserted(engine, state)

    with pytest.raises(IntegrityError):
        await inserted(engine, state)


async def test_a_save_from_a_stale_read_is_refused(db: Databases) -> None:
    engine = await db.fresh("orchestrator")
    state = saga()
    await inserted(engine, state)
    first = replace(state, step=1)
    second = replace(state, status=SagaStatus.COMPENSATING)

    async with engine.begin() as conn:
        saved = await STORE.save(conn, first, NOW)
    with pytest.raises(StaleSaga):
        async with engine.begin() as conn:
            await STORE.save(conn, second, NOW)

    assert saved.version == 1
    assert await load(engine, state.saga_id) == saved


async def test_history_entries_follow_each_other(db: Databases) -> None:
    engine = await db.fresh("orchestrator")
    state = saga()
    await inserted(engine, state)
    entry = HistoryEntry("order-created", "started", None, SagaStatus.RUNNING, 0, "started")

    async with engine.begin() as conn:
        for _ in range(3):
            await STORE.append_history(conn, state.saga_id, entry, NOW, message_id="m-1")

    assert await count(engine, saga_history) == 3


async def test_a_locked_read_brings_the_last_history_seq_to_append_after(
    db: Databases,
) -> None:
    engine = await db.fresh("orchestrator")
    state = saga()
    await inserted(engine, state)
    entry = HistoryEntry("order-created", "started", None, SagaStatus.RUNNING, 0, "started")

    async with engine.begin() as conn:
        fresh = await STORE.load_locked(conn, state.saga_id)
        await STORE.append_history(conn, state.saga_id, entry, NOW, after=0)
        await STORE.append_history(conn, state.saga_id, entry, NOW)
    async with engine.begin() as conn:
        locked = await STORE.load_locked(conn, state.saga_id)
        assert locked is not None
        await STORE.append_history(conn, state.saga_id, entry, NOW, after=locked.last_seq)
        history = await STORE.history_of(conn, state.saga_id)

    assert fresh is not None and fresh.state == state and fresh.last_seq == 0
    assert locked.last_seq == 2
    assert [h.seq for h in history] == [1, 2, 3]


async def test_due_returns_waiting_sagas_past_their_deadline_earliest_first(
    db: Databases,
) -> None:
    engine = await db.fresh("orchestrator")
    later = saga(deadline=NOW - timedelta(seconds=1))
    earlier = saga(deadline=NOW - timedelta(seconds=2))
    not_yet = saga(deadline=NOW + timedelta(microseconds=1))
    finished = saga(deadline=NOW - timedelta(seconds=3), status=SagaStatus.COMPLETED)
    no_deadline = saga(deadline=None)
    await inserted(engine, later, earlier, not_yet, finished, no_deadline)

    async with engine.begin() as conn:
        due = await STORE.due(conn, NOW, limit=10)
        first_only = await STORE.due(conn, NOW, limit=1)

    assert [s.saga_id for s in due] == [earlier.saga_id, later.saga_id]
    assert [s.saga_id for s in first_only] == [earlier.saga_id]


@pytest.mark.parametrize("backend", ROW_LOCKING_BACKENDS)
async def test_a_saga_loaded_for_update_waits_for_the_holder_to_commit(db: Databases) -> None:
    engine = await db.fresh("orchestrator")
    state = saga()
    await inserted(engine, state)
    waiter = db.engine("orchestrator")

    async def load_as(session: asyncio.Future[int]) -> SagaState | None:
        async with waiter.begin() as conn:
            session.set_result(await session_id(conn))
            return await STORE.load_for_update(conn, state.saga_id)

    session: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    async with engine.begin() as holder:
        held = await STORE.load_for_update(holder, state.saga_id)
        assert held is not None
        waiting = asyncio.create_task(load_as(session))
        await until_waiting_for_a_lock(db.engine("orchestrator"), await session)
        blocked = not waiting.done()
        saved = await STORE.save(holder, replace(held, step=1), NOW)

    assert blocked
    assert await waiting == saved


@pytest.mark.parametrize("backend", ROW_LOCKING_BACKENDS)
async def test_two_deadline_scans_take_different_sagas(db: Databases) -> None:
    engine = await db.fresh("orchestrator")
    sagas = [saga(deadline=NOW - timedelta(seconds=i)) for i in range(1, 7)]
    await inserted(engine, *sagas)
    other = db.engine("orchestrator")

    async with engine.begin() as first, other.begin() as second:
        mine = await STORE.due(first, NOW, limit=4)
        theirs = await STORE.due(second, NOW, limit=4)

    assert len(mine) == 4
    assert len(theirs) == 2
    assert {s.saga_id for s in mine}.isdisjoint({s.saga_id for s in theirs})


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_without_row_locks_the_version_stops_the_second_scan(db: Databases) -> None:
    """SQLite ignores SKIP LOCKED: both scans see the saga and the slower save fails."""
    engine = await db.fresh("orchestrator")
    state = saga(deadline=NOW - timedelta(seconds=1))
    await inserted(engine, state)

    async with engine.begin() as conn:
        [mine] = await STORE.due(conn, NOW, limit=1)
    async with engine.begin() as conn:
        [theirs] = await STORE.due(conn, NOW, limit=1)
    async with engine.begin() as conn:
        await STORE.save(conn, replace(mine, step=1), NOW)

    with pytest.raises(StaleSaga):
        async with engine.begin() as conn:
            await STORE.save(conn, replace(theirs, step=1), NOW)


async def locked_after_waiting(
    conn: AsyncConnection, saga_id: str, how: Literal["one", "many"]
) -> LockedSaga:
    if how == "one":
        locked = await STORE.load_locked(conn, saga_id)
        assert locked is not None
        return locked
    return (await STORE.load_many_locked(conn, [saga_id]))[saga_id]


@pytest.mark.parametrize("how", ["one", "many"])
@pytest.mark.parametrize("backend", ROW_LOCKING_BACKENDS)
async def test_a_history_entry_after_waiting_for_the_saga_follows_the_holders(
    db: Databases, how: Literal["one", "many"]
) -> None:
    """The last seq read with the saga, after waiting for its lock, counts what the
    holder appended (READ COMMITTED: a statement's snapshot predates its lock wait)."""
    engine = await db.fresh("orchestrator")
    state = saga()
    await inserted(engine, state)
    waiter = db.engine("orchestrator")

    async def append_when_locked(session: asyncio.Future[int]) -> None:
        async with waiter.begin() as conn:
            session.set_result(await session_id(conn))
            locked = await locked_after_waiting(conn, state.saga_id, how)
            await STORE.append_history(conn, state.saga_id, ENTRY, NOW, after=locked.last_seq)

    session: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    async with engine.begin() as holder:
        held = await STORE.load_locked(holder, state.saga_id)
        assert held is not None
        await STORE.append_history(holder, state.saga_id, ENTRY, NOW, after=held.last_seq)
        appending = asyncio.create_task(append_when_locked(session))
        await until_waiting_for_a_lock(db.engine("orchestrator"), await session)
    await appending

    async with engine.connect() as conn:
        history = await STORE.history_of(conn, state.saga_id)
    assert [h.seq for h in history] == [1, 2]

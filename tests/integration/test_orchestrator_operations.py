"""``ordersaga sagas list | show | retry`` on an orchestrator database the saga runner
filled, and on the embedded system with a compensation nobody acknowledges."""

import asyncio
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from click.testing import Result
from sqlalchemy import delete, select
from typer.testing import CliRunner

from ordersaga.cli.app import app as ordersaga_app
from ordersaga.cli.sagas import sagas_app
from ordersaga.config import Settings
from ordersaga.contracts import headers as h
from ordersaga.contracts import topics
from ordersaga.contracts.codec import decode
from ordersaga.contracts.messages import (
    CancelPayment,
)
from ordersaga.contracts.statuses import (
    OrderStatus,
    StockStatus,
)
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.db.timestamps import utc_now
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.runtime.embedded import EmbeddedSystem
from ordersaga.saga.clock import ProcessClock
from ordersaga.saga.timer import fire_due_deadlines
from ordersaga.services.orchestrator.tables import metadata, outbox, saga_history, saga_instances
from ordersaga.services.orchestrator.wiring import place_order_runner
from tests.api.admin_support import LossyBroker
from tests.saga_fixtures import (
    SetClock,
    an_order,
    applied,
    deliver,
    paid,
    refunded,
    released,
    reserved,
)
from tests.support import until_async
from tests.system.conftest import api_of

SETTINGS = Settings(
    reserve_timeout=30, payment_timeout=20, compensation_timeout=10, max_compensation_attempts=3
)
# Wide enough that rich never folds a saga id.
CLI_ENV = {"COLUMNS": "250"}


def cli(*args: str, app: Any = sagas_app) -> Result:
    return CliRunner().invoke(app, list(args), env=CLI_ENV)


def entry(output: str, saga_id: str) -> str:
    """The listing's line of ``saga_id`` and the indented lines of its reason, joined."""
    lines = output.splitlines()
    start = next(n for n, line in enumerate(lines) if saga_id in line)
    end = start + 1
    while end < len(lines) and lines[end].startswith("    "):
        end += 1
    return " ".join(" ".join(lines[start:end]).split())


# -- an orchestrator database filled through the saga runner --------------------------


@dataclass(frozen=True)
class Sagas:
    """The sagas in the database, by what became of them."""

    completed: str
    cancelled: str
    parked: str
    running: str


async def fill(path: Path) -> Sagas:
    """Four sagas begun 4 h, 3 h, 2 h and 1 min ago: completed, cancelled, parked, running."""
    engine = make_engine(sqlite_url(path))
    await create_schema(engine, metadata)
    clock = SetClock(utc_now() - timedelta(hours=4))
    runner = place_order_runner(SETTINGS, clock=ProcessClock(clock))
    orders = [an_order() for _ in range(4)]
    completed, cancelled, parked, running = orders

    await deliver(engine, runner, topics.ORDER_CREATED, completed)
    await deliver(engine, runner, topics.PRODUCT_RESERVED, reserved(completed))
    await deliver(engine, runner, topics.PAYMENT_PROCESSED, paid(completed))
    applied_completed = applied(completed, OrderStatus.ORDER_COMPLETED)
    await deliver(engine, runner, topics.ORDER_STATUS_APPLIED, applied_completed)
    clock.now += timedelta(hours=1)
    await deliver(engine, runner, topics.ORDER_CREATED, cancelled)
    await deliver(
        engine, runner, topics.PRODUCT_RESERVED, reserved(cancelled, StockStatus.UNAVAILABLE)
    )
    applied_cancelled = applied(cancelled, OrderStatus.ORDER_CANCELLED)
    await deliver(engine, runner, topics.ORDER_STATUS_APPLIED, applied_cancelled)
    clock.now += timedelta(hours=1)
    await deliver(engine, runner, topics.ORDER_CREATED, parked)
    await deliver(engine, runner, topics.PRODUCT_RESERVED, reserved(parked))
    # Payment never answers, nor acknowledges cancel-payment: sent 3 times, then parked.
    for seconds in (20, 30, 50, 90):
        at = clock.now + timedelta(seconds=seconds)
        assert await fire_due_deadlines(Transactions(engine, outbox), runner, now=at) == 1
    clock.now = utc_now() - timedelta(minutes=1)
    await deliver(engine, runner, topics.ORDER_CREATED, running)

    async with engine.begin() as conn:
        await conn.execute(delete(outbox))
    await engine.dispose()
    return Sagas(*(str(o.orderID) for o in orders))


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, Sagas]:
    """A data directory whose orchestrator database holds the four sagas of :func:`fill`."""
    return tmp_path, asyncio.run(fill(tmp_path / "orchestrator.sqlite3"))


async def read(path: Path, saga_id: str) -> tuple[Any, list[tuple[Any, ...]], list[Any]]:
    """The saga's row, its history (event, outcome, to_status) and the outbox."""
    engine = make_engine(sqlite_url(path))
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(saga_instances).where(saga_instances.c.saga_id == saga_id)
                )
            ).one()
            entries = await conn.execute(
                select(saga_history.c.event, saga_history.c.outcome, saga_history.c.to_status)
                .where(saga_history.c.saga_id == saga_id)
                .order_by(saga_history.c.seq)
            )
            messages = (await conn.execute(select(outbox).order_by(outbox.c.id))).all()
        return row, [tuple(e) for e in entries], list(messages)
    finally:
        await engine.dispose()


def test_list_shows_every_saga_newest_first_and_counts_them_by_state(
    filled: tuple[Path, Sagas],
) -> None:
    data_dir, sagas = filled

    result = cli("list", "--data-dir", str(data_dir))

    assert result.exit_code == 0, result.output
    ids = [sagas.running, sagas.parked, sagas.cancelled, sagas.completed]
    positions = [result.output.index(i) for i in ids]
    assert positions == sorted(positions)
    running, parked, cancelled, completed = (entry(result.output, i) for i in ids)
    assert "RUNNING" in running and "reserve_stock" in running
    assert "COMPLETED" in completed and "update_order" in completed
    assert "CANCELLED" in cancelled and "stock: refused" in cancelled
    assert "PARKED" in parked and "cancel-payment not acknowledged after 3 attempts" in parked
    assert (
        "All sagas by state: RUNNING 1, COMPENSATING 0, PARKED 1, NOTIFYING 0, COMPLETED 1, "
        "CANCELLED 1" in result.output
    )


def test_list_filters_by_state_and_age_and_stops_at_the_limit(
    filled: tuple[Path, Sagas],
) -> None:
    data_dir, sagas = filled
    everyone = {sagas.running, sagas.parked, sagas.cancelled, sagas.completed}

    def listed(*options: str) -> set[str]:
        result = cli("list", "--data-dir", str(data_dir), *options)
        assert result.exit_code == 0, result.output
        return {s for s in everyone if s in result.output}

    parked = cli("list", "--state", "parked", "--data-dir", str(data_dir))
    assert {s for s in everyone if s in parked.output} == {sagas.parked}
    line = entry(parked.output, sagas.parked)
    assert " 3 " in line  # cancel-payment sent three times
    assert "(cancelling: payment did not answer within 20s)" in line
    assert listed("--older-than", "150m") == {sagas.cancelled, sagas.completed}
    assert listed("--older-than", "1d") == set()
    assert listed("--limit", "2") == {sagas.running, sagas.parked}
    assert listed("--state", "COMPENSATING") == set()


@pytest.mark.parametrize(
    ("options", "names"),
    [
        (["--state", "STUCK"], ["RUNNING", "COMPENSATING", "PARKED", "COMPLETED", "CANCELLED"]),
        (["--older-than", "5 minutes"], ["30s", "5m", "2h", "1d"]),
        (["--older-than", "2w"], ["30s", "5m", "2h", "1d"]),
    ],
)
def test_a_bad_state_or_age_is_a_usage_error_naming_what_is_allowed(
    filled: tuple[Path, Sagas], options: list[str], names: list[str]
) -> None:
    data_dir, _ = filled

    result = cli("list", "--data-dir", str(data_dir), *options)

    assert result.exit_code == 2
    flat = " ".join(result.output.split())
    assert all(name in flat for name in names), result.output


def test_show_prints_the_saga_and_its_whole_history(filled: tuple[Path, Sagas]) -> None:
    data_dir, sagas = filled

    result = cli("show", sagas.parked, "--data-dir", str(data_dir))

    assert result.exit_code == 0, result.output
    assert f"Saga {sagas.parked}: PARKED" in result.output
    assert "definition place-order v1" in result.output
    assert "payment did not answer within 20s" in result.output
    positions = [result.output.index(f" {o} ") for o in ("started", "advanced", "timed-out")]
    assert positions == sorted(positions)
    assert result.output.index(" retried ") < result.output.index("COMPENSATING → PARKED")
    assert result.output.count(" retried ") == 2
    assert "cancel-payment not acknowledged after 3 attempts" in result.output
    assert '"amount": "50.00"' in result.output


async def park_by_a_failing_deadline(path: Path) -> str:
    """A saga whose amount is no number, so no compensation can be built for it, parked
    by the timer after three failed deadline scans."""
    engine = make_engine(sqlite_url(path))
    await create_schema(engine, metadata)
    clock = SetClock(utc_now() - timedelta(minutes=5))
    runner = place_order_runner(SETTINGS, clock=ProcessClock(clock))
    order = an_order()
    await deliver(engine, runner, topics.ORDER_CREATED, order)
    saga_id = str(order.orderID)
    async with engine.begin() as conn:
        row = saga_instances.c.saga_id == saga_id
        data = json.loads(await conn.scalar(select(saga_instances.c.data).where(row)))
        await conn.execute(
            saga_instances.update().where(row).values(data=json.dumps({**data, "amount": "x"}))
        )
    for seconds in (31, 32, 33):
        at = clock.now + timedelta(seconds=seconds)
        assert await fire_due_deadlines(Transactions(engine, outbox), runner, now=at) == 1
    await engine.dispose()
    return saga_id


def test_a_saga_parked_by_a_failing_deadline_shows_its_error(tmp_path: Path) -> None:
    saga_id = asyncio.run(park_by_a_failing_deadline(tmp_path / "orchestrator.sqlite3"))

    listed = cli("list", "--state", "parked", "--data-dir", str(tmp_path))
    shown = cli("show", saga_id, "--data-dir", str(tmp_path))

    assert listed.exit_code == 0, listed.output
    assert saga_id in listed.output
    assert "deadline failed 3 times in a row: ValidationError" in listed.output
    assert shown.exit_code == 0, shown.output
    assert f"Saga {saga_id}: PARKED" in shown.output
    assert "deadline failed 3 times in a row: ValidationError" in shown.output
    assert shown.output.count(" failed ") >= 2
    assert "not acknowledged" not in shown.output


def test_retry_sends_the_compensation_again_and_the_saga_finishes(
    filled: tuple[Path, Sagas],
) -> None:
    data_dir, sagas = filled
    path = data_dir / "orchestrator.sqlite3"

    result = cli("retry", sagas.parked, "--data-dir", str(data_dir))

    assert result.exit_code == 0, result.output
    assert "retried: COMPENSATING at process_payment" in result.output
    row, history, messages = asyncio.run(read(path, sagas.parked))
    assert (row.status, row.step, row.attempts) == ("COMPENSATING", 1, 0)
    assert history[-2:] == [
        ("deadline", "parked", "PARKED"),
        ("operator-retry", "resumed", "COMPENSATING"),
    ]
    [message] = messages
    assert message.topic == topics.CANCEL_PAYMENT
    assert isinstance(decode(message.topic, message.value), CancelPayment)
    assert json.loads(message.headers)[h.TRACEPARENT] == row.traceparent

    async def acknowledge() -> None:
        engine = make_engine(sqlite_url(path))
        runner = place_order_runner(SETTINGS)
        order = an_order().model_copy(update={"orderID": UUID(sagas.parked)})
        await deliver(engine, runner, topics.PAYMENT_CANCELLED, refunded(order))
        await deliver(engine, runner, topics.PRODUCT_RESERVATION_CANCELLED, released(order))
        ack = applied(order, OrderStatus.ORDER_CANCELLED)
        await deliver(engine, runner, topics.ORDER_STATUS_APPLIED, ack)
        await engine.dispose()

    asyncio.run(acknowledge())
    row, _, _ = asyncio.run(read(path, sagas.parked))
    assert (row.status, row.reason) == ("CANCELLED", "payment did not answer within 20s")


def test_retry_refuses_a_saga_that_is_not_parked_and_one_that_does_not_exist(
    filled: tuple[Path, Sagas],
) -> None:
    data_dir, sagas = filled
    stranger = str(uuid4())

    not_parked = cli("retry", sagas.completed, "--data-dir", str(data_dir))
    unknown = cli("retry", stranger, "--data-dir", str(data_dir))
    unknown_shown = cli("show", stranger, "--data-dir", str(data_dir))

    assert not_parked.exit_code == 1
    assert "is COMPLETED, not PARKED" in not_parked.output
    assert (unknown.exit_code, unknown_shown.exit_code) == (1, 1)
    assert f"no saga {stranger}" in unknown.output
    assert f"no saga {stranger}" in unknown_shown.output
    _, history, messages = asyncio.run(read(data_dir / "orchestrator.sqlite3", sagas.completed))
    assert [outcome for _, outcome, _ in history][-2:] == ["completed", "acknowledged"]
    assert messages == []


def test_a_data_dir_without_an_orchestrator_database_is_a_usage_error(tmp_path: Path) -> None:
    result = cli("list", "--data-dir", str(tmp_path / "nowhere"))

    assert result.exit_code == 2
    assert "Error: no embedded system's orchestrator database" in result.output


# -- the embedded system, with payment away ---------------------------------------------

FAST = Settings(
    payment_timeout=0.2,
    compensation_timeout=0.05,
    timer_interval=0.02,
    max_compensation_attempts=3,
)


async def saga_status(system: EmbeddedSystem, saga_id: str) -> str | None:
    async with system.engines["orchestrator"].connect() as conn:
        return await conn.scalar(
            select(saga_instances.c.status).where(saga_instances.c.saga_id == saga_id)
        )


async def wait_for_status(
    system: EmbeddedSystem, saga_id: str, status: str, timeout: float = 5.0
) -> None:
    async def reached() -> bool:
        return await saga_status(system, saga_id) == status

    await until_async(reached, timeout, f"saga {saga_id} {status}")


async def cli_in_thread(*args: str, app: Any = sagas_app) -> Result:
    """The command line, off the event loop the system runs on (it runs its own)."""
    return await asyncio.to_thread(cli, *args, app=app)


async def park_an_order(data_dir: Path, broker: InProcessBroker) -> str:
    """Place an order with payment away; return it once its saga is PARKED."""
    async with EmbeddedSystem(data_dir, FAST, broker=broker) as system, api_of(system) as api:
        await system.endpoints["payment"].stop()
        order_id = str((await api.place(1, 1, 1))["orderID"])
        await wait_for_status(system, order_id, "PARKED")
        listed = await cli_in_thread("list", "--state", "PARKED", "--data-dir", str(data_dir))
    assert listed.exit_code == 0, listed.output
    assert order_id in listed.output
    assert "cancel-payment not acknowledged after 3 attempts" in listed.output
    return order_id


async def finished(system: EmbeddedSystem, api: Any, order_id: str) -> None:
    """The saga CANCELLED, the order ORDER_CANCELLED, and ``ordersaga verify`` passes."""
    await wait_for_status(system, order_id, "CANCELLED")
    order = await api.wait(order_id, timeout=5)
    assert order["status"] == "ORDER_CANCELLED"
    assert order["reason"] == "payment did not answer within 0.2s"
    assert await system.wait_until_quiet(timeout=5)
    checked = await cli_in_thread("verify", "--data-dir", str(system.data_dir), app=ordersaga_app)
    assert checked.exit_code == 0, checked.output


async def test_a_parked_saga_retried_by_an_operator_once_payment_is_back(tmp_path: Path) -> None:
    broker = LossyBroker()
    broker.losing.add(topics.CANCEL_PAYMENT)  # lost for good, as if dead-lettered
    order_id = await park_an_order(tmp_path, broker)
    broker.losing.clear()

    async with EmbeddedSystem(tmp_path, FAST, broker=broker) as system, api_of(system) as api:
        # Payment is back and charges the order; the saga, parked, ignores the approval.
        await wait_for_history(system, order_id, topics.PAYMENT_PROCESSED)
        assert await saga_status(system, order_id) == "PARKED"
        retried = await cli_in_thread("retry", order_id, "--data-dir", str(tmp_path))
        assert retried.exit_code == 0, retried.output
        await finished(system, api, order_id)
    await broker.close()


async def test_a_parked_saga_resumes_by_itself_when_the_late_acknowledgement_comes(
    tmp_path: Path,
) -> None:
    broker = InProcessBroker()
    order_id = await park_an_order(tmp_path, broker)

    # Payment is back: it works through its backlog, acknowledging cancel-payment.
    async with EmbeddedSystem(tmp_path, FAST, broker=broker) as system, api_of(system) as api:
        await finished(system, api, order_id)
    await broker.close()


async def wait_for_history(
    system: EmbeddedSystem, saga_id: str, event: str, timeout: float = 5.0
) -> None:
    query = select(saga_history.c.seq).where(
        saga_history.c.saga_id == saga_id, saga_history.c.event == event
    )

    async def seen() -> bool:
        async with system.engines["orchestrator"].connect() as conn:
            return (await conn.execute(query)).first() is not None

    await until_async(seen, timeout, f"saga {saga_id} seeing {event}")

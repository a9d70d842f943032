"""The gauges read from a service's database, on every backend: the outbox's backlog and
its oldest row's age; the sagas unfinished by state and age band, overdue and parked."""

from datetime import timedelta

from prometheus_client import CollectorRegistry

from ordersaga.messaging.outbox import write_outbox
from ordersaga.messaging.outbox_rows import backlog
from ordersaga.messaging.port import OutgoingMessage
from ordersaga.observability.metrics import AGE_BANDS, Metrics
from ordersaga.observability.recorders import ServiceMetrics
from ordersaga.saga.sampling import sample_sagas
from ordersaga.services.stock.tables import outbox
from tests.persistence.conftest import Databases
from tests.persistence.test_saga_timer import NOW, runner_at, started


async def test_the_outbox_backlog_counts_what_waits_and_ages_the_oldest(db: Databases) -> None:
    engine = await db.fresh("stock")
    async with engine.connect() as conn:
        empty = await backlog(conn, outbox)
    assert (empty.waiting, empty.oldest_age, empty.failed) == (0, 0.0, 0)
    async with engine.begin() as conn:
        await write_outbox(
            conn, outbox, [OutgoingMessage("t", f"k{i}", b"v", {}) for i in range(3)]
        )
    async with engine.connect() as conn:
        found = await backlog(conn, outbox)
    assert found.waiting == 3
    assert 0 <= found.oldest_age < 60
    assert found.failed == 0


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, {"service": "orchestrator", "replica": "0", **labels})
    return found if found is not None else -1.0


async def test_the_sagas_by_state_and_age_band(db: Databases) -> None:
    engine = await db.fresh("orchestrator")
    await started(engine, NOW)
    await started(engine, NOW + timedelta(minutes=3))
    metrics = ServiceMetrics(Metrics(), "orchestrator")
    registry = metrics.metrics.registry
    async with engine.connect() as conn:
        await sample_sagas(runner_at(NOW + timedelta(minutes=3, seconds=10)), metrics, conn)
    assert value(registry, "ordersaga_sagas_unfinished", state="RUNNING", age_band="1m_5m") == 1
    assert value(registry, "ordersaga_sagas_unfinished", state="RUNNING", age_band="under_1m") == 1
    assert value(registry, "ordersaga_sagas_overdue") == 1, "the first one's 30 s are past"
    assert value(registry, "ordersaga_sagas_parked") == 0

    async with engine.connect() as conn:
        await sample_sagas(runner_at(NOW + timedelta(hours=2)), metrics, conn)
    bands = {
        band: value(registry, "ordersaga_sagas_unfinished", state="RUNNING", age_band=band)
        for band in AGE_BANDS
    }
    assert bands == {"under_1m": 0, "1m_5m": 0, "5m_1h": 0, "over_1h": 2}
    assert value(registry, "ordersaga_sagas_overdue") == 2

"""The sagas as the gauges show them: parked, overdue, unfinished by state and age band.

Read with two grouped counts over the unfinished sagas (indexed by status and by
deadline), on the clock the deadlines are judged by (the database's).
"""

from datetime import timedelta

from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.observability.metrics import AGE_BAND_LIMITS, AGE_BANDS
from ordersaga.observability.recorders import ServiceMetrics
from ordersaga.saga.runner import SagaRunner
from ordersaga.saga.state import ACTIVE_STATUSES, SagaStatus

UNFINISHED = [*(s.value for s in ACTIVE_STATUSES), SagaStatus.PARKED.value]


async def sample_sagas(runner: SagaRunner, metrics: ServiceMetrics, conn: AsyncConnection) -> None:
    """Set ``metrics``' saga gauges from the sagas of ``runner``'s store."""
    instances = runner.store.instances
    now = await runner.clock.now(conn)
    created = instances.c.created_at
    band = case(
        *(
            (created > now - timedelta(seconds=limit), literal(name))
            for name, limit in zip(AGE_BANDS, AGE_BAND_LIMITS, strict=False)
        ),
        else_=literal(AGE_BANDS[-1]),
    ).label("band")
    counts = await conn.execute(
        select(instances.c.status, band, func.count())
        .where(instances.c.status.in_(UNFINISHED))
        .group_by(instances.c.status, band)
    )
    unfinished = {(status, name): int(n) for status, name, n in counts}
    overdue = await conn.scalar(
        select(func.count())
        .select_from(instances)
        .where(
            and_(
                instances.c.status.in_([s.value for s in ACTIVE_STATUSES]),
                instances.c.deadline < now,
            )
        )
    )
    parked = sum(n for (status, _), n in unfinished.items() if status == SagaStatus.PARKED.value)
    metrics.sagas_sampled(parked, int(overdue or 0), unfinished)

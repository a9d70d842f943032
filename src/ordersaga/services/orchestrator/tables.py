"""The orchestrator's tables: saga instances, their history, the operators' audit trail,
outbox and inbox."""

from sqlalchemy import MetaData, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.db.naming import NAMING_CONVENTION
from ordersaga.messaging.inbox import inbox_table
from ordersaga.messaging.outbox import outbox_table
from ordersaga.saga.audit import audit_table
from ordersaga.saga.state import SagaStatus
from ordersaga.saga.store import saga_tables

metadata = MetaData(naming_convention=NAMING_CONVENTION)

saga_instances, saga_history = saga_tables(metadata)
operator_actions = audit_table(metadata)
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)


async def count_open_sagas(engine: AsyncEngine) -> int:
    """Sagas not yet COMPLETED or CANCELLED (one waiting for its order-updated to be
    acknowledged among them)."""
    finished = [SagaStatus.COMPLETED.value, SagaStatus.CANCELLED.value]
    query = (
        select(func.count())
        .select_from(saga_instances)
        .where(saga_instances.c.status.not_in(finished))
    )
    async with engine.connect() as conn:
        return int(await conn.scalar(query) or 0)

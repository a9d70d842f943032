"""``/admin/v1/dead-letters``: list, show and replay dead letters."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from ordersaga.services.orchestrator.admin.deps import AdminDep
from ordersaga.services.orchestrator.admin.models import (
    ActionBody,
    DeadLetterDetail,
    DeadLetterSummary,
    ReplayResult,
)
from ordersaga.services.orchestrator.admin.operator import OperatorDep

router = APIRouter(prefix="/dead-letters", tags=["dead letters"])

Partition = Annotated[int, Path(ge=0)]
Offset = Annotated[int, Path(ge=0)]


@router.get("", response_model=list[DeadLetterSummary])
async def list_dead_letters(
    admin: AdminDep,
    _: OperatorDep,
    topic: Annotated[
        str | None, Query(description="A topic (order-updated) or its dead-letter topic.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetterSummary]:
    """The dead letters on every <topic>.DLQ, or on one; oldest first."""
    return await admin.dead_letters(topic, limit)


@router.get("/{topic}/{partition}/{offset}", response_model=DeadLetterDetail)
async def show_dead_letter(
    topic: str, partition: Partition, offset: Offset, admin: AdminDep, _: OperatorDep
) -> DeadLetterDetail:
    """One dead letter whole: key, headers, value."""
    return await admin.dead_letter(topic, partition, offset)


@router.post("/{topic}/{partition}/{offset}/replay", response_model=ReplayResult)
async def replay_dead_letter(
    topic: str,
    partition: Partition,
    offset: Offset,
    body: ActionBody,
    admin: AdminDep,
    operator: OperatorDep,
) -> ReplayResult:
    """Publish a dead letter again to its source topic, keeping its message-id."""
    return await admin.replay(topic, partition, offset, operator, body.reason)

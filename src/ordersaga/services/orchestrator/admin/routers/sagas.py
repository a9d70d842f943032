"""``/admin/v1/sagas``: search, counts, one saga's page, retry and cancel."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from ordersaga.saga.search import SagaQuery
from ordersaga.services.orchestrator.admin.deps import AdminDep
from ordersaga.services.orchestrator.admin.models import (
    ActionBody,
    ActionResult,
    SagaCounts,
    SagaPage,
    SagaPageDetail,
)
from ordersaga.services.orchestrator.admin.operator import OperatorDep

router = APIRouter(prefix="/sagas", tags=["sagas"])

SortKey = Literal["created_at", "updated_at", "state", "step", "deadline"]
"""The sort keys of :data:`~ordersaga.saga.search.SORT_KEYS`, for the OpenAPI document."""


@router.get("", response_model=SagaPage)
async def search_sagas(
    admin: AdminDep,
    _: OperatorDep,
    order_id: str | None = None,
    user_id: int | None = None,
    state: str | None = None,
    step: str | None = None,
    older_than: Annotated[
        str | None, Query(description="Begun at least this long ago: 30s, 5m, 2h, 1d.")
    ] = None,
    newer_than: Annotated[
        str | None, Query(description="Begun at most this long ago: 30s, 5m, 2h, 1d.")
    ] = None,
    parked: bool | None = None,
    reason: Annotated[str | None, Query(description="Text the reason contains.")] = None,
    sort: SortKey = "created_at",
    order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> SagaPage:
    """Sagas matching every filter given, sorted, a page at a time."""
    query = SagaQuery.parse(
        order_id=order_id,
        user_id=user_id,
        state=state,
        older_than=older_than,
        newer_than=newer_than,
        parked=parked,
        reason=reason,
        sort=sort,
        descending=order == "desc",
        limit=limit,
        cursor=cursor,
    )
    return await admin.search(query, step)


@router.get("/counts", response_model=SagaCounts)
async def count_sagas(admin: AdminDep, _: OperatorDep) -> SagaCounts:
    """How many sagas are in each state, the parked and the oldest unfinished."""
    return await admin.counts()


@router.get("/{saga_id}", response_model=SagaPageDetail)
async def show_saga(saga_id: str, admin: AdminDep, _: OperatorDep) -> SagaPageDetail:
    """A saga, its timeline, its remaining steps and the compensations that would run if
    it failed now."""
    return await admin.detail(saga_id)


@router.post("/{saga_id}/retry", response_model=ActionResult)
async def retry_saga(
    saga_id: str, body: ActionBody, admin: AdminDep, operator: OperatorDep
) -> ActionResult:
    """Send a PARKED saga's unacknowledged message again (409 for any other state)."""
    return await admin.retry(saga_id, operator, body.reason)


@router.post("/{saga_id}/cancel", response_model=ActionResult)
async def cancel_saga(
    saga_id: str, body: ActionBody, admin: AdminDep, operator: OperatorDep
) -> ActionResult:
    """Compensate a RUNNING saga now, before its pivot (409 after it, or when finished)."""
    return await admin.cancel(saga_id, operator, body.reason)

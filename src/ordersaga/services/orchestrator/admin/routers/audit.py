"""``/admin/v1/audit``: what operators did, and why."""

from typing import Annotated

from fastapi import APIRouter, Query

from ordersaga.services.orchestrator.admin.deps import AdminDep
from ordersaga.services.orchestrator.admin.models import AuditEntryOut
from ordersaga.services.orchestrator.admin.operator import OperatorDep

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=list[AuditEntryOut])
async def audit_entries(
    admin: AdminDep,
    _: OperatorDep,
    saga_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEntryOut]:
    """Operator actions, newest first; only those on ``saga_id`` if given."""
    return await admin.audit(saga_id, limit)

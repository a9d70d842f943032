"""What the admin routes may ask for: the admin service, set once on ``app.state``."""

from typing import Annotated

from fastapi import Depends, Request

from ordersaga.services.orchestrator.admin.service import SagaAdmin


async def get_admin(request: Request) -> SagaAdmin:
    admin = request.app.state.saga_admin
    if not isinstance(admin, SagaAdmin):
        raise RuntimeError("the app was not built by create_admin_app")
    return admin


AdminDep = Annotated[SagaAdmin, Depends(get_admin)]

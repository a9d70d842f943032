"""The admin API app: its OpenAPI at ``/admin/openapi.json``, its routes under ``/admin/v1``.

No docs page: the usual ones load their scripts from a CDN, and nothing here may.
"""

from fastapi import FastAPI

from ordersaga.auth.verify import TokenVerifier
from ordersaga.services.orchestrator.admin.errors import install_error_handlers
from ordersaga.services.orchestrator.admin.models import ERRORS
from ordersaga.services.orchestrator.admin.routers import audit, dead_letters, sagas
from ordersaga.services.orchestrator.admin.service import SagaAdmin
from ordersaga.services.orchestrator.console import mount_console

PREFIX = "/admin"


def create_admin_app(admin: SagaAdmin, *, verifier: TokenVerifier | None) -> FastAPI:
    """The admin API on ``admin``'s sagas, audit trail and dead letters, for operators
    whose tokens ``verifier`` accepts (``None``: authentication disabled, everyone is
    the ``local`` operator)."""
    app = FastAPI(
        title="ordersaga admin",
        description=(
            "Find sagas, read their timelines, retry or cancel them, replay dead letters; "
            "every action is audited. A saga page is kept live by polling "
            "GET /admin/v1/sagas/{saga_id}."
        ),
        version="1",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.saga_admin = admin
    app.state.admin_verifier = verifier
    install_error_handlers(app)
    for router in (sagas.router, dead_letters.router, audit.router):
        app.include_router(router, prefix=f"{PREFIX}/v1", responses=ERRORS)
    mount_console(app)
    return app

"""``/healthz`` (the process answers) and ``/readyz`` (and so does its database, and
whatever else the process registered with :func:`add_readiness_check`)."""

import asyncio
from collections.abc import Callable

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.services.order.deps import EngineDep
from ordersaga.services.order.schemas import Healthy, Unready

READY_TIMEOUT = 2.0

router = APIRouter(tags=["health"])

ReadinessCheck = Callable[[], str | None]
"""Why the replica is not ready, or ``None``; called on every ``/readyz``, so cheap."""


def add_readiness_check(app: FastAPI, check: ReadinessCheck) -> None:
    """Make ``/readyz`` of ``app`` answer 503 with ``check``'s reason while it has one."""
    checks: list[ReadinessCheck] = getattr(app.state, "readiness_checks", [])
    app.state.readiness_checks = [*checks, check]


async def database_problem(engine: AsyncEngine, timeout: float = READY_TIMEOUT) -> str | None:
    """Why the database cannot serve requests, or ``None`` when it answers ``SELECT 1``."""
    try:
        async with asyncio.timeout(timeout):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except TimeoutError:
        return f"database did not answer within {timeout:g}s"
    except Exception as error:
        return f"database unreachable: {type(error).__name__}: {error}".splitlines()[0]
    return None


@router.get("/healthz", summary="The process is up")
async def healthz() -> Healthy:
    return Healthy()


@router.get(
    "/readyz",
    summary="The database answers and the broker takes messages",
    response_model=Healthy,
    responses={
        503: {
            "model": Unready,
            "description": "The database does not answer, or the broker does not take the "
            "replica's messages",
        }
    },
)
async def readyz(request: Request, engine: EngineDep) -> Healthy | JSONResponse:
    problem = await database_problem(engine)
    checks: list[ReadinessCheck] = getattr(request.app.state, "readiness_checks", [])
    for check in checks:
        problem = problem or check()
    if problem is None:
        return Healthy()
    return JSONResponse(Unready(reason=problem).model_dump(), status_code=503)

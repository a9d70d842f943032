"""The order service's HTTP API."""

import math
from typing import Any

import uvicorn
from fastapi import FastAPI

from ordersaga.auth.verify import TokenVerifier
from ordersaga.config import Settings
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.observability.recorders import ServiceMetrics
from ordersaga.services.order.catalog import CatalogCache
from ordersaga.services.order.deps import OrderServiceContext
from ordersaga.services.order.errors import install_error_handlers
from ordersaga.services.order.group_commit import GroupCommit
from ordersaga.services.order.limits import MAX_BODY_BYTES, BodySizeLimit
from ordersaga.services.order.metrics import RequestMetrics
from ordersaga.services.order.metrics import router as metrics_router
from ordersaga.services.order.rate_limit import RateLimiter
from ordersaga.services.order.routers import health, orders, products
from ordersaga.services.order.schemas import PlaceOrderBody
from ordersaga.services.order.tracing import ServerSpans


def create_app(
    transactions: Transactions,
    settings: Settings,
    *,
    verifier: TokenVerifier | None,
    max_body_bytes: int = MAX_BODY_BYTES,
    metrics: ServiceMetrics | None = None,
) -> FastAPI:
    """The API on the order service's database, placing orders in ``transactions``' units
    of work (which wake the relay, so an ``order-created`` leaves without waiting for a poll).

    Every route but ``/healthz``, ``/readyz`` (and ``/metrics``, ``/docs``) needs a bearer
    token ``verifier`` accepts; ``None`` (authentication disabled) lets everyone in as an
    operator.

    A request body over ``max_body_bytes`` is answered 413 without being read whole.
    Requests are counted in ``metrics``, whose whole registry ``/metrics`` serves.
    """
    metrics = metrics or ServiceMetrics.detached("order")
    app = FastAPI(
        title="ordersaga order service",
        description="Place orders and follow them through the place-order saga.",
        version="1",
        # The service's own spans and metrics (ServerSpans, RequestMetrics) are its
        # telemetry; FastAPI's would ask OpenTelemetry's globals on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    limiter = RateLimiter(settings.api_rate_limit, settings.api_rate_limit_burst)
    placing = GroupCommit(transactions, CatalogCache(transactions.engine))
    app.state.order_service = OrderServiceContext(
        transactions, settings, verifier, limiter, placing
    )
    install_error_handlers(app, accepted_body_fields=list(PlaceOrderBody.model_fields))
    app.state.metrics_registry = metrics.metrics.registry
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(ServerSpans, tracing=transactions.tracing)
    # Added last, so it is outermost: it sees the 413s and the errors' answers too.
    app.add_middleware(RequestMetrics, metrics=metrics.http())
    for router in (orders.router, products.router, health.router, metrics_router):
        app.include_router(router)
    return app


def server_config(
    app: FastAPI, *, keep_alive: float = 75.0, graceful_shutdown: float = 5.0, **where: Any
) -> uvicorn.Config:
    """How the API is served: httptools parses HTTP in C (uvicorn's pure-Python h11 cost a
    quarter of the order service's CPU per request), and no access log. ``where`` is
    ``host`` and ``port``, or nothing when the caller serves on a socket of its own.

    Idle keep-alive connections stay open ``keep_alive`` seconds, longer than clients keep
    theirs: a server that closes one as the client sends on it resets the request with
    no answer. On shutdown, requests in flight get ``graceful_shutdown`` seconds to be
    answered (with ``Connection: close``) before they are cancelled."""
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        http="httptools",
        timeout_keep_alive=math.ceil(keep_alive),  # whole seconds, as uvicorn declares
        timeout_graceful_shutdown=math.ceil(graceful_shutdown),
        **where,
    )

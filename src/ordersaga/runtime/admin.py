"""The admin API where the orchestrator runs: its socket and its app.

Every orchestrator replica serves it (they share the port, as order replicas share the
API's), and so does the embedded process. It requires operator tokens; with
authentication disabled (``ORDERSAGA_AUTH=disabled``) it listens on a loopback address
only and refuses any other.
"""

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from ordersaga.auth.verify import TokenVerifier
from ordersaga.config import Settings
from ordersaga.messaging.dead_letters import ReadLimits
from ordersaga.messaging.port import Broker
from ordersaga.messaging.stopping import bounded
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.runtime.ports import ADMIN_PORT_CHOICE, bind_api
from ordersaga.saga.runner import SagaRunner
from ordersaga.services.orchestrator.admin.app import create_admin_app
from ordersaga.services.orchestrator.admin.service import SagaAdmin
from ordersaga.services.orchestrator.operations import SagaOperations
from ordersaga.services.order.api import server_config

log = logging.getLogger(__name__)

LOOPBACK_ONLY = "loopback only, no authentication"
OPERATORS_ONLY = "operator tokens required"


class AdminNotLoopback(ValueError):
    """ORDERSAGA_ADMIN_HOST names an address other hosts could reach."""

    def __init__(self, host: str) -> None:
        super().__init__(
            f"ORDERSAGA_ADMIN_HOST={host} is not a loopback address: with authentication "
            "disabled (ORDERSAGA_AUTH=disabled) the admin API listens on 127.0.0.1 (or ::1) "
            "only. Unset ORDERSAGA_ADMIN_HOST or ORDERSAGA_AUTH, or reach it through an "
            "SSH tunnel."
        )
        self.host = host


def check_admin_host(settings: Settings) -> None:
    """Raise :class:`AdminNotLoopback` when authentication is disabled and the admin
    host is not a loopback address; with tokens required, any address will do."""
    if settings.auth == "disabled":
        check_loopback(settings.admin_host)


def check_loopback(host: str) -> None:
    """Raise :class:`AdminNotLoopback` unless ``host`` is a loopback address."""
    name = "127.0.0.1" if host == "localhost" else host
    try:
        loopback = ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise AdminNotLoopback(host)


def bind_admin(settings: Settings, *, shared: bool = False) -> socket.socket:
    """The admin API's socket, bound, not listening; refuses a non-loopback host when
    authentication is disabled (:class:`AdminNotLoopback`) and a taken port
    (:class:`~ordersaga.runtime.ports.PortInUse`)."""
    check_admin_host(settings)
    return bind_api(
        settings.admin_host, settings.admin_port, shared=shared, choose=ADMIN_PORT_CHOICE
    )


def admin_app(
    transactions: Transactions,
    runner: SagaRunner,
    broker: Broker,
    limits: ReadLimits,
    *,
    verifier: TokenVerifier | None,
) -> FastAPI:
    """The admin API on the orchestrator's units of work (which wake its relay) and saga
    runner, and on the dead letters of ``broker``; for operators whose tokens
    ``verifier`` accepts (``None``: authentication disabled)."""
    operations = SagaOperations(transactions, runner)
    return create_admin_app(SagaAdmin(operations, broker, limits), verifier=verifier)


def listening_line(sock: socket.socket, authenticated: bool = True) -> str:
    """What the start says about the admin API."""
    host, port = sock.getsockname()[:2]
    access = OPERATORS_ONLY if authenticated else LOOPBACK_ONLY
    return f"admin API and console on http://{host}:{port} ({access})"


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: whoever runs it stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AdminServer:
    """The admin API served on a bound socket beside the rest of the process, until
    :meth:`stop`."""

    def __init__(self, server: uvicorn.Server, serving: "asyncio.Task[None]") -> None:
        self._server = server
        self._serving = serving

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    @classmethod
    async def start(cls, app: FastAPI, sock: socket.socket, grace: float = 5.0) -> "AdminServer":
        """Serve ``app`` on ``sock``; returns once it listens (or failed to)."""
        server = _Server(server_config(app, graceful_shutdown=grace))
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="admin-api")
        while not (server.started or serving.done()):
            await asyncio.sleep(0.01)  # uvicorn has no event for "listening"
        return cls(server, serving)

    async def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        await bounded(self._serving, timeout, "stopping the admin API")

"""The database servers the persistence tests run on, and their scratch databases.

Real data is never touched: each test session creates databases of its own with a
random suffix (``stock_test_1a2b3c4d`` on PostgreSQL, ``orders_test_1a2b3c4d`` on
MariaDB...) and drops them at the end. The servers are the ones the settings name
(``make infra-up`` starts them).
"""

import asyncio
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from ordersaga.config import Settings
from ordersaga.services.registry import SERVICE_NAMES, service

BACKENDS = ("sqlite", "postgresql", "mariadb")

# What each service's scratch databases are called before their suffix.
DATABASE_STEMS = {
    "order": "orders",
    "orchestrator": "orchestrator",
    "stock": "stock",
    "payment": "payment",
}


@dataclass(frozen=True)
class Server:
    """A PostgreSQL or MariaDB server, reached with the credentials of the settings."""

    label: str
    admin_url: URL

    @property
    def address(self) -> str:
        return f"{self.admin_url.host}:{self.admin_url.port}"

    def url(self, database: str) -> str:
        """The URL of ``database`` on this server, password included."""
        return self.admin_url.set(database=database).render_as_string(hide_password=False)

    def require_reachable(self) -> None:
        """Fail, never skip, when the server does not answer: the suite needs it."""
        try:
            socket.create_connection((self.admin_url.host, self.admin_url.port), 3).close()
            return
        except OSError as error:
            reason = str(error)
        pytest.fail(
            f"{self.label} is not reachable at {self.address} ({reason}): run `make infra-up`",
            pytrace=False,
        )

    async def create(self, names: Iterable[str]) -> None:
        await self._each(names, "CREATE DATABASE {}")

    async def drop(self, names: Iterable[str]) -> None:
        force = " WITH (FORCE)" if self.admin_url.get_backend_name() == "postgresql" else ""
        await self._each(names, "DROP DATABASE IF EXISTS {}" + force)

    async def _each(self, names: Iterable[str], statement: str) -> None:
        engine = create_async_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                for name in names:
                    await conn.exec_driver_sql(statement.format(name))
        finally:
            await engine.dispose()


def server(backend: str) -> Server:
    """The server of ``backend`` ("postgresql" or "mariadb"), as the settings name it,
    reached as the owner of the services' databases (who creates and migrates them)."""
    settings = Settings()
    wanted = "mysql" if backend == "mariadb" else backend
    for name in SERVICE_NAMES:
        url = make_url(service(name).owner_url(settings))
        if url.get_backend_name() == wanted:
            label = "MariaDB" if backend == "mariadb" else "PostgreSQL"
            return Server(label, url)
    raise AssertionError(f"no service of the settings uses {backend}")


def scratch_names(backend: str, services: Iterable[str] = SERVICE_NAMES) -> dict[str, str]:
    """Fresh database names, one per service, that no other run will use.

    On MariaDB the ordersaga user may only create databases named ``orders_test*``, so
    the other services' scratch databases there are ``orders_test_<suffix>_<service>``.
    """
    suffix = secrets.token_hex(4)
    if backend == "mariadb":
        return {s: f"orders_test_{suffix}" + ("" if s == "order" else f"_{s}") for s in services}
    return {s: f"{DATABASE_STEMS[s]}_test_{suffix}" for s in services}


def create_scratch(server: Server, names: Iterable[str]) -> None:
    """Create the databases ``names``; fail clearly if the server refuses."""
    server.require_reachable()
    try:
        asyncio.run(server.create(list(names)))
        return
    except Exception as error:
        reason = str(getattr(error, "orig", None) or error)
    pytest.fail(
        f"{server.label} at {server.address} would not create scratch databases ({reason}): "
        "run `make infra-up`, which sets up the ordersaga user and lets it create databases",
        pytrace=False,
    )

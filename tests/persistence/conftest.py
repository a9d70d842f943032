"""Every persistence test runs on SQLite, PostgreSQL and MariaDB, on migrated schemas.

Per session and backend, one database per service is created and brought to the latest
revision with ``ordersaga.db.migrate.upgrade``, so the tests also prove that the
migrations give the code what it needs. Each test starts from emptied, seeded tables.
A real database that cannot be reached fails the tests with a hint; nothing is skipped.
"""

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import MetaData, delete
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.db.engine import make_engine, sqlite_url
from ordersaga.db.migrate import upgrade
from ordersaga.services import registry
from ordersaga.services.registry import SERVICE_NAMES, SERVICES
from tests.persistence.servers import BACKENDS, create_scratch, scratch_names, server

METADATA: dict[str, MetaData] = {s.name: s.metadata for s in SERVICES}


async def _upgrade_all(urls: dict[str, str]) -> None:
    for name, url in urls.items():
        await upgrade(registry.service(name), url)


@pytest.fixture(scope="session")
def sqlite_urls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("databases")
    urls = {s: sqlite_url(directory / f"{s}.sqlite3") for s in SERVICE_NAMES}
    asyncio.run(_upgrade_all(urls))
    return urls


def _scratch_urls(backend: str) -> Iterator[dict[str, str]]:
    found = server(backend)
    names = scratch_names(backend)
    create_scratch(found, names.values())
    try:
        urls = {service: found.url(name) for service, name in names.items()}
        asyncio.run(_upgrade_all(urls))
        yield urls
    finally:
        asyncio.run(found.drop(names.values()))


@pytest.fixture(scope="session")
def postgresql_urls() -> Iterator[dict[str, str]]:
    yield from _scratch_urls("postgresql")


@pytest.fixture(scope="session")
def mariadb_urls() -> Iterator[dict[str, str]]:
    yield from _scratch_urls("mariadb")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def urls(backend: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """The migrated databases of ``backend``, by service (created on first use)."""
    found: dict[str, str] = request.getfixturevalue(f"{backend}_urls")
    return found


class Databases:
    """The test's way into its backend's databases; every engine it opens is disposed."""

    def __init__(self, backend: str, urls: dict[str, str]) -> None:
        self.backend = backend
        self.urls = urls
        self._engines: list[AsyncEngine] = []

    @property
    def has_row_locks(self) -> bool:
        """``FOR UPDATE`` and ``SKIP LOCKED`` mean something (not on SQLite)."""
        return self.backend != "sqlite"

    async def fresh(self, service: str, *, seeded: bool = True) -> AsyncEngine:
        """An engine on ``service``'s database, emptied and (by default) seeded."""
        engine = self.engine(service)
        async with engine.begin() as conn:
            for table in reversed(METADATA[service].sorted_tables):
                await conn.execute(delete(table))
            if seeded:
                await registry.service(service).seed(conn)
        return engine

    def engine(self, service: str) -> AsyncEngine:
        """Another engine on ``service``'s database, with connections of its own."""
        engine = make_engine(self.urls[service])
        self._engines.append(engine)
        return engine

    def engines(self, service: str, count: int) -> list[AsyncEngine]:
        """``count`` engines, so concurrent transactions really run side by side."""
        return [self.engine(service) for _ in range(count)]

    async def close(self) -> None:
        for engine in self._engines:
            await engine.dispose()


@pytest.fixture
async def db(backend: str, urls: dict[str, str]) -> AsyncIterator[Databases]:
    databases = Databases(backend, urls)
    yield databases
    await databases.close()

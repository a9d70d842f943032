"""Scratch databases and empty topics on the configured servers, for tests and benchmarks.

A scratch database lives on the same server as the service's configured one, under
another name, so a run never touches the data of a system using the real names. Topic
names are the contract's, so emptying them is for a Kafka nobody else is using.
"""

import asyncio
import time
from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from sqlalchemy import URL, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ordersaga.config import Settings
from ordersaga.contracts import topics
from ordersaga.messaging.kafka_config import client_options
from ordersaga.services.registry import SERVICES


def scratch_urls(settings: Settings, name: str) -> dict[str, str]:
    """Every service's database under another name, as its owner logs in to it (password
    included): ``name`` with ``{database}`` replaced by the configured database's name
    (``"{database}_test_1a2b"`` → ``orders_test_1a2b``). These create, drop, migrate and
    read the scratch databases from the test or benchmark itself.

    `make infra-up` lets the ordersaga user create on MariaDB only databases whose names
    start with ``orders_test``, so scratch names keep the configured name in front and
    ``_test`` after it.
    """
    return {s.name: _renamed(s.owner_url(settings), name, s.name) for s in SERVICES}


def scratch_environment(settings: Settings, name: str) -> dict[str, str]:
    """The ``ORDERSAGA_*`` variables that point the services at the scratch databases of
    :func:`scratch_urls`: each service's own login (its password stays where it was
    configured: a ``*_PASSWORD`` or ``*_PASSWORD_FILE`` variable), and the owner's login
    when it is another one."""
    env = {}
    for service in SERVICES:
        url = getattr(settings, service.url_setting)
        env[service.url_variable] = _renamed(url, name, service.name)
        owner = getattr(settings, f"{service.name}_db_owner_url")
        if owner is not None:
            env[f"{service.url_variable[: -len('_URL')]}_OWNER_URL"] = _renamed(
                owner, name, service.name
            )
    return env


def _renamed(url_text: str, name: str, service: str) -> str:
    url = make_url(url_text)
    database = name.format(database=url.database or service)
    return url.set(database=database).render_as_string(hide_password=False)


def _server(url: URL) -> AsyncEngine:
    """An engine on ``url``'s server, outside any database a scratch run drops."""
    if url.get_backend_name() == "postgresql":
        url = url.set(database="postgres")
    else:  # no default database (``set`` ignores None)
        url = url._replace(database=None)
    return create_async_engine(url, isolation_level="AUTOCOMMIT")


def _quoted(url: URL, name: str) -> str:
    return f'"{name}"' if url.get_backend_name() == "postgresql" else f"`{name}`"


async def _each_database(urls: Mapping[str, str], statements: list[str]) -> None:
    """Run ``statements`` (``{db}`` is the quoted database name) on every URL's server."""
    for url_text in urls.values():
        url = make_url(url_text)
        if url.get_backend_name() == "sqlite":
            raise ValueError(f"scratch databases need a database server, not {url_text}")
        database = url.database
        assert database is not None
        engine = _server(url)
        try:
            async with engine.connect() as conn:
                for statement in statements:
                    await conn.execute(text(statement.format(db=_quoted(url, database))))
        finally:
            await engine.dispose()


async def recreate_databases(urls: Mapping[str, str]) -> None:
    """Drop (if there) and create each database named in ``urls``: empty, no schema."""
    await drop_databases(urls)
    await _each_database(urls, ["CREATE DATABASE {db}"])


async def drop_databases(urls: Mapping[str, str]) -> None:
    """Drop each database named in ``urls``, cutting off whoever is still connected."""
    for service, url_text in urls.items():
        force = " WITH (FORCE)" if make_url(url_text).get_backend_name() == "postgresql" else ""
        await _each_database({service: url_text}, [f"DROP DATABASE IF EXISTS {{db}}{force}"])


async def delete_topics(settings: Settings, timeout: float = 60.0) -> None:
    """Delete the contract's topics and their dead-letter topics, and wait until Kafka
    has; the services create them again, empty, when they start."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        present = set(await admin.list_topics()) & set(topics.with_dead_letters())
        if present:
            await admin.delete_topics(sorted(present))
        deadline = time.monotonic() + timeout
        while set(await admin.list_topics()) & present:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Kafka did not delete the topics in {timeout:g}s")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()

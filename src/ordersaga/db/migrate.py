"""Bringing a service's database to the latest schema, and loading its sample data.

Each service owns its database, so each has its own migration history
(:mod:`ordersaga.migrations`). Both operations are idempotent and take a database-wide
lock first, so replicas that start together may all run them: one does the work, the
others wait and then find nothing left to do.
"""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, Protocol

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ordersaga.db.engine import make_engine

log = logging.getLogger(__name__)

Seed = Callable[[AsyncConnection], Awaitable[None]]


class Schema(Protocol):
    """What migrating and seeding a service's database needs of the service (a service
    of :mod:`ordersaga.services.registry` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def migrations(self) -> str:
        """The package of its Alembic history (``env.py`` and ``versions/``)."""

    @property
    def seed(self) -> Seed: ...


LOCK_TIMEOUT_SECONDS = 300
"""How long a replica waits for another one's migration before giving up."""


class SchemaNotCurrent(RuntimeError):
    """The database is not at the latest revision: ``ordersaga db upgrade`` first."""


def alembic_config(schema: Schema) -> Config:
    """The alembic configuration of ``schema``'s migrations, built in code (no ini file)."""
    config = Config()
    config.set_main_option("script_location", str(resources.files(schema.migrations)))
    # Revision files must be importable module names for the type checker: no leading digit.
    config.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    return config


def head_revision(schema: Schema) -> str:
    """The latest revision of ``schema``."""
    head = ScriptDirectory.from_config(alembic_config(schema)).get_current_head()
    if head is None:
        raise RuntimeError(f"{schema.name} has no migrations")
    return head


async def upgrade(schema: Schema, url: str) -> None:
    """Migrate ``schema``'s database at ``url`` to the latest revision; a no-op if it is."""
    config = alembic_config(schema)
    engine = _engine(url)
    try:
        async with engine.begin() as conn, _exclusive(conn):
            before = await conn.run_sync(_current_revision)
            await conn.run_sync(_upgrade_to_head, config)
    finally:
        await engine.dispose()
    head = head_revision(schema)
    if before != head:
        log.info("%s: schema upgraded from %s to %s", schema.name, before or "nothing", head)


async def seed(schema: Schema, url: str) -> None:
    """Load ``schema``'s sample data into its tables that are empty; leave the others.

    Raises :class:`SchemaNotCurrent` when the database has not been upgraded.
    """
    engine = _engine(url)
    try:
        async with engine.begin() as conn, _exclusive(conn):
            _require_head(schema, await conn.run_sync(_current_revision))
            await schema.seed(conn)
    finally:
        await engine.dispose()


async def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at; ``None`` if it was never migrated."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current_revision)
    finally:
        await engine.dispose()


async def require_current(schema: Schema, url: str) -> None:
    """Raise :class:`SchemaNotCurrent`, naming the command that fixes it, unless the
    database at ``url`` is at ``schema``'s latest revision."""
    _require_head(schema, await current_revision(url))


def _require_head(schema: Schema, current: str | None) -> None:
    if current != head_revision(schema):
        raise SchemaNotCurrent(
            f"the {schema.name} database is at revision {current or 'none'}, not "
            f"the latest: run `ordersaga db upgrade {schema.name}` first"
        )


def _engine(url: str) -> AsyncEngine:
    """An engine whose transactions hold the database from their first statement.

    On SQLite the driver would otherwise run DDL outside any transaction and only lock
    the file at the first write: a failed migration would be left half done, and two
    upgrades at once would both create the same tables.
    """
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_manual_transactions)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_manual_transactions(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _upgrade_to_head(conn: Connection, config: Config) -> None:
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


@asynccontextmanager
async def _exclusive(conn: AsyncConnection) -> AsyncIterator[None]:
    """Hold a lock named after the database while migrating or seeding it.

    PostgreSQL: a transaction-level advisory lock, released at commit or rollback.
    MariaDB/MySQL: a named lock, released explicitly (DDL there commits as it goes).
    SQLite: the transaction began with ``BEGIN IMMEDIATE``, which excludes other writers.
    """
    dialect = conn.dialect.name
    if dialect == "postgresql":
        name = literal("ordersaga-migrate:") + func.current_database()
        await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(name))))
        yield
    elif dialect in ("mysql", "mariadb"):
        name = func.concat("ordersaga-migrate:", func.database())
        got = await conn.scalar(select(func.get_lock(name, LOCK_TIMEOUT_SECONDS)))
        if got != 1:
            raise TimeoutError(
                f"another migration held the database for over {LOCK_TIMEOUT_SECONDS} s"
            )
        try:
            yield
        finally:
            await conn.scalar(select(func.release_lock(name)))
    else:
        yield

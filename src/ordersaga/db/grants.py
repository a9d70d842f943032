"""What a service's own login may do in its database: read and write rows, nothing more.

Each service logs in with a login of its own (``ORDERSAGA_<SERVICE>_DB_URL``) that owns
nothing: it cannot create, alter or drop a table, and it can reach no other service's
database. Migrations run as the database's owner (``ORDERSAGA_<SERVICE>_DB_OWNER_URL``),
which then grants the service's login what it needs on the tables as they now are.

On PostgreSQL the owner grants here, after every upgrade: a login needs a grant per
database, and tests and benchmarks create databases of their own. On MariaDB a login's
rights are given per database name pattern by whoever creates the logins (`make
infra-up` does, for ``orders`` and ``orders_test%``; docs/security.md says what to run
on another server), so there is nothing to grant here.
"""

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.db.engine import make_engine

ROW_RIGHTS = "SELECT, INSERT, UPDATE, DELETE"
"""All a service does with its tables."""


def runtime_login(owner_url: str, runtime_url: str) -> str | None:
    """The service's login when it is not the owner's, on a server where the owner
    grants it here (PostgreSQL); ``None`` when there is nothing to grant."""
    owner, runtime = make_url(owner_url), make_url(runtime_url)
    if runtime.get_backend_name() != "postgresql" or not runtime.username:
        return None
    if runtime.username == owner.username:
        return None
    return runtime.username


async def grant_runtime(owner_url: str, runtime_url: str) -> str | None:
    """As the owner, let the service's login use the rows of every table in the schema,
    and take from everyone else the right to connect; the login's name, or ``None``
    when the service logs in as the owner (or on MariaDB and SQLite)."""
    login = runtime_login(owner_url, runtime_url)
    if login is None:
        return None
    engine = make_engine(owner_url)
    try:
        async with engine.begin() as conn:
            await _grant(conn, login, make_url(owner_url).database or "")
    finally:
        await engine.dispose()
    return login


async def _grant(conn: AsyncConnection, login: str, database: str) -> None:
    role = _quoted(login)
    db = _quoted(database)
    for statement in (
        f"REVOKE ALL ON DATABASE {db} FROM PUBLIC",
        f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role}",
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT {ROW_RIGHTS} ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
    ):
        await conn.execute(text(statement))


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'

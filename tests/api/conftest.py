"""An order database on a SQLite file, with its schema and the sample catalog."""

import asyncio
from pathlib import Path

import pytest

from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.services.order.tables import metadata
from ordersaga.services.order.wiring import seed


async def _prepare(url: str) -> None:
    engine = make_engine(url)
    await create_schema(engine, metadata)
    async with engine.begin() as conn:
        await seed(conn)
    await engine.dispose()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """The URL of a fresh order database; its engines are each test's own to make."""
    url = sqlite_url(tmp_path / "order.sqlite3")
    asyncio.run(_prepare(url))
    return url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each operation schemathesis tests its own node id again.

    schemathesis names the test of each operation ``test_x[POST /api/v1/orders]``, but on
    pytest 9 all of them get the node id ``...::test_x``. pytest-xdist, which make test
    runs these tests on, hands tests out by node id and would run the first operation
    only; as the test's name, the id says which operation it fuzzes.
    """
    for item in items:
        parent = item.parent
        if parent is None or item.nodeid.rsplit("::", 1)[-1] == item.name:
            continue
        item._id = parent.id.child(item.name)

"""Options of the whole suite.

``--backend sqlite`` (repeatable) runs the tests parametrised by database backend on
those backends only, so the persistence suite can run without PostgreSQL and MariaDB
(``make test-fast``). Without it every backend runs, and a server that cannot be
reached fails its tests: nothing is skipped.
"""

import pytest

from tests.persistence.servers import BACKENDS


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        action="append",
        choices=BACKENDS,
        default=None,
        help="run the database-parametrised tests on this backend only (repeatable)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    chosen: list[str] | None = config.getoption("--backend")
    if not chosen:
        return
    kept: list[pytest.Item] = []
    left_out: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec is not None else None
        (kept if backend is None or backend in chosen else left_out).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept

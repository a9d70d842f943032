"""Options of the whole suite, and the environment every test (and every process a test
starts) runs in.

``--backend sqlite`` (repeatable) runs the tests parametrised by database backend on
those backends only, so the persistence suite can run without PostgreSQL and MariaDB
(``make test-fast``). Without it every backend runs, and a server that cannot be
reached fails its tests: nothing is skipped.
"""

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.persistence.servers import BACKENDS

# Authentication stays on in the tests, as by default: every API a test starts, in this
# process or as a child, verifies tokens signed with this one local key, and the tests'
# clients mint theirs with it. The per-client rate limit is off, except in the tests of
# it: a test placing a hundred orders as one client measures the saga, not the limiter.
_KEY_DIR = Path(tempfile.mkdtemp(prefix="ordersaga-test-key-"))
atexit.register(shutil.rmtree, _KEY_DIR, True)
os.environ.setdefault("ORDERSAGA_AUTH_KEY_FILE", str(_KEY_DIR / "signing-key.pem"))
os.environ["ORDERSAGA_AUTH"] = "enabled"  # whatever the shell says; the tests of "disabled" say so
for _elsewhere in ("ORDERSAGA_AUTH_JWKS_URL", "ORDERSAGA_AUTH_JWKS_FILE"):
    os.environ.pop(_elsewhere, None)
os.environ.setdefault("ORDERSAGA_API_RATE_LIMIT", "0")
# A pytest-xdist worker (make test runs the in-process tests on two) starts with COLUMNS=80
# and LINES=24 in its environment. The command line's consoles, made at import, would take
# them as a fixed size and ignore the width each test gives its CliRunner.
for _size in ("COLUMNS", "LINES"):
    os.environ.pop(_size, None)


# infra/with-infra.sh (`make test`) gives the run the services' own database logins
# (`infra/infra.sh env`): the tests of the real stack and the benchmark run on them; every
# other test sees the settings' defaults, as on a machine without them.
_DATABASE_LOGINS = re.compile(
    r"ORDERSAGA_(ORDER|ORCHESTRATOR|STOCK|PAYMENT)_DB_(URL|PASSWORD|OWNER_URL|OWNER_PASSWORD)"
    r"(_FILE)?"
)
_ON_THE_LOGINS = ("realstack", "bench")


@pytest.fixture(autouse=True)
def _database_logins_on_the_real_stack_only(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if request.node.path.parent.name in _ON_THE_LOGINS:
        return
    for name in [n for n in os.environ if _DATABASE_LOGINS.fullmatch(n)]:
        monkeypatch.delenv(name)


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

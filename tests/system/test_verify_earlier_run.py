"""`ordersaga verify` names data left from an earlier run as the cause."""

import os
import subprocess
from pathlib import Path

from sqlalchemy import delete

from ordersaga.runtime.embedded import embedded_engines
from ordersaga.runtime.processes import CLI
from ordersaga.services.order.tables import orders
from tests.system.conftest import assert_invariants, embedded


def verify(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "verify", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "300"},
    )


async def test_verify_names_an_earlier_runs_data(tmp_path: Path) -> None:
    async with embedded(tmp_path) as (system, api):
        for user in (1, 2):
            await api.wait(str((await api.place(user, 1, 1))["orderID"]))
        await assert_invariants(system)

    clean = verify(tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "earlier run" not in clean.stdout

    # The order database starts again from empty while the others keep their data, as
    # on a machine whose PostgreSQL cluster outlived the clone's MariaDB.
    engine = embedded_engines(tmp_path)["order"]
    async with engine.begin() as conn:
        await conn.execute(delete(orders))
    await engine.dispose()

    mixed = verify(tmp_path)
    assert mixed.returncode == 1
    said = " ".join(mixed.stdout.split())
    assert "2 sagas" in said and "earlier run" in said and "make infra-reset" in said, said

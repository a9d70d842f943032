"""Each service logs in to its own database with a login that owns nothing: it reads and
writes its rows, and can neither change a schema nor reach another service's database.
Migrations run as the owner. PostgreSQL is reached over TLS with the server's name
checked against the infra's CA. No password (a database's or Kafka's) appears in anything
ordersaga prints.

The logins, their password files and the CA are what `make infra-up` makes;
`infra/with-infra.sh` (what `make test` runs) exports their settings
(`infra/infra.sh env`).
"""

import asyncio
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError

from ordersaga.config import Settings
from ordersaga.db.engine import make_engine
from ordersaga.services.registry import SERVICES, service
from tests.auth_support import bearer, tokens
from tests.realstack.stack import CLI, Stack
from tests.support import until_sync

POSTGRES_SERVICES = ("orchestrator", "stock", "payment")


def _infra_settings() -> Settings:
    settings = Settings()
    missing = [s.name for s in SERVICES if getattr(settings, f"{s.name}_db_owner_url") is None]
    assert not missing, (
        f"no owner login configured for {missing}: run the real-stack tests under "
        "infra/with-infra.sh (make test), which exports `infra/infra.sh env`"
    )
    return settings


def _ca() -> str:
    ca = os.environ.get("ORDERSAGA_INFRA_POSTGRES_CA", "")
    assert Path(ca).is_file(), "ORDERSAGA_INFRA_POSTGRES_CA names no file: run under with-infra.sh"
    return ca


def _runtime_url(stack: Stack, name: str, database_of: str | None = None) -> str:
    """``name``'s own login (password from its file) on ``database_of``'s scratch
    database (its own by default)."""
    settings = _infra_settings()
    url = make_url(service(name).database_url(settings))
    target = make_url(stack.urls[database_of or name]).database
    return url.set(database=target).render_as_string(hide_password=False)


async def _fails(url: str, statement: str) -> str:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    except DBAPIError as error:
        return str(error.orig)
    finally:
        await engine.dispose()
    raise AssertionError(f"{statement!r} succeeded as {make_url(url).username}")


async def _scalar(url: str, statement: str) -> object:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(text(statement))
    finally:
        await engine.dispose()


def test_a_service_login_reads_its_rows_and_nothing_else(stack: Stack) -> None:
    stock = _runtime_url(stack, "stock")
    assert asyncio.run(_scalar(stock, "SELECT count(*) FROM stock")) == 3

    # another service's database: not even a connection
    refused = asyncio.run(_fails(_runtime_url(stack, "stock", "payment"), "SELECT 1"))
    assert "permission denied for database" in refused, refused
    # its own schema: rows yes, structure no
    assert "permission denied" in asyncio.run(_fails(stock, "CREATE TABLE stolen (x int)"))
    assert "must be owner" in asyncio.run(
        _fails(stock, "ALTER TABLE stock ADD COLUMN discount int")
    )
    assert "must be owner" in asyncio.run(_fails(stock, "DROP TABLE stock"))

    order = _runtime_url(stack, "order")
    assert asyncio.run(_scalar(order, "SELECT count(*) FROM products")) == 3
    for statement in (
        "CREATE TABLE stolen (x int)",
        "ALTER TABLE orders ADD COLUMN discount int",
        "DROP TABLE orders",
        "SELECT count(*) FROM mysql.user",
    ):
        assert "denied" in asyncio.run(_fails(order, statement)), statement


def test_db_upgrade_runs_as_the_owner_and_grants_the_service_login(stack: Stack) -> None:
    said = " ".join(stack.cli("db", "upgrade").stdout.split())
    for name in POSTGRES_SERVICES:
        assert f"{name}: schema already at" in said, said
        assert f"ordersaga_{name} may read and write its rows" in said, said


def test_postgres_over_tls_checks_the_server_against_the_ca(
    stack: Stack, tmp_path: Path
) -> None:
    tls = f"ssl=verify-full&sslrootcert={_ca()}"
    stock = _runtime_url(stack, "stock").replace("ssl=disable", tls)
    assert asyncio.run(
        _scalar(stock, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    ) is True

    other_ca = tmp_path / "other-ca.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=someone else", "-keyout", str(tmp_path / "other.key"),
         "-out", str(other_ca)],
        check=True, capture_output=True,
    )
    forged = _runtime_url(stack, "stock").replace(
        "ssl=disable", f"ssl=verify-full&sslrootcert={other_ca}"
    )
    with pytest.raises(Exception, match="certificate verify failed"):
        asyncio.run(_scalar(forged, "SELECT 1"))


def test_saga_over_tls_with_own_logins_prints_no_secret(stack: Stack, tmp_path: Path) -> None:
    """The four services on their own logins, PostgreSQL over verify-full TLS: an order
    completes; then every log line and command output is searched for the passwords
    (the databases' and Kafka's), the signing key and the bearer token."""
    tls = f"ssl=verify-full&sslrootcert={_ca()}"
    for name in POSTGRES_SERVICES:
        variable = f"ORDERSAGA_{name.upper()}_DB_URL"
        stack.env[variable] = stack.env[variable].replace("ssl=disable", tls)
    stack.start_all()
    token = tokens().for_user(1)
    placed = httpx.post(
        f"{stack.api}/api/v1/orders",
        json={"productID": 1, "quantity": 1},
        headers=bearer(token),
    ).json()

    def status() -> str:
        got = httpx.get(
            f"{stack.api}/api/v1/orders/{placed['orderID']}", headers=bearer(token)
        ).json()
        return str(got["status"])

    until_sync(lambda: status() == "ORDER_COMPLETED", 60, "the order to complete")
    outputs = [stack.cli(*args) for args in (["verify"], ["sagas", "list"], ["db", "upgrade"])]

    # a wrong password is refused, and the refusal does not repeat it
    wrong = "wrong-" + os.urandom(8).hex()
    refused = subprocess.run(
        [*CLI, "serve", "stock"],
        env={**stack.env, "ORDERSAGA_STOCK_DB_PASSWORD": wrong,
             "ORDERSAGA_STOCK_DB_PASSWORD_FILE": ""},
        capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode == 2, refused.stderr
    assert "password authentication failed" in refused.stdout + refused.stderr

    key = Path(os.environ["ORDERSAGA_AUTH_KEY_FILE"]).read_text()
    key_body = "".join(line for line in key.splitlines() if not line.startswith("-----"))
    secrets = {wrong, token, key_body[:40], key_body[-40:]}
    for name in ("order", *POSTGRES_SERVICES):
        secrets.add(Path(os.environ[f"ORDERSAGA_{name.upper()}_DB_PASSWORD_FILE"]).read_text())
        # and the SCRAM passwords the replicas and the commands log in to Kafka with
        secrets.add(Path(os.environ[f"ORDERSAGA_{name.upper()}_KAFKA_SASL_PASSWORD_FILE"]).read_text())
    secrets.add(Path(os.environ["ORDERSAGA_KAFKA_SASL_PASSWORD_FILE"]).read_text())
    said = [p.read_text(errors="replace") for p in stack.logs.glob("*.log")]
    said += [o.stdout + o.stderr for o in outputs]
    said.append(refused.stdout + refused.stderr)
    assert len(said) >= 8
    for secret in secrets:
        assert secret.strip() and not any(secret.strip() in text for text in said)

"""Settings from files (``ORDERSAGA_*_FILE``), database passwords in place of the URL's,
the owner's login for migrations, and TLS options of a PostgreSQL URL."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import make_url

from ordersaga.config import SettingFileError, Settings
from ordersaga.db.engine import make_engine
from ordersaga.db.grants import runtime_login
from ordersaga.services.registry import service


def test_a_file_sets_a_setting_without_its_final_line_break(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "stock.password"
    secret.write_text("s3cret with spaces\n")
    monkeypatch.setenv("ORDERSAGA_STOCK_DB_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("ORDERSAGA_PARTITIONS_FILE", str(tmp_path / "partitions"))
    (tmp_path / "partitions").write_text("12")
    settings = Settings()
    assert settings.partitions == 12
    assert settings.stock_db_password is not None
    assert settings.stock_db_password.get_secret_value() == "s3cret with spaces"
    assert "s3cret" not in repr(settings)


def test_a_missing_file_names_the_variable_and_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERSAGA_STOCK_DB_PASSWORD_FILE", str(tmp_path / "nope"))
    with pytest.raises(SettingFileError, match=r"PASSWORD_FILE: cannot read .*nope"):
        Settings()


def test_a_variable_and_its_file_together_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "p").write_text("x")
    monkeypatch.setenv("ORDERSAGA_STOCK_DB_PASSWORD_FILE", str(tmp_path / "p"))
    monkeypatch.setenv("ORDERSAGA_STOCK_DB_PASSWORD", "y")
    with pytest.raises(SettingFileError, match="both set"):
        Settings()


def test_the_password_setting_replaces_the_urls_and_the_owner_login_migrates() -> None:
    settings = Settings(
        stock_db_url="postgresql+asyncpg://ordersaga_stock@db:5432/stock",
        stock_db_password="runtime-pw",
        stock_db_owner_url="postgresql+asyncpg://owner:inline@db:5432/stock",
    )
    stock = service("stock")
    runtime, owner = make_url(stock.database_url(settings)), make_url(stock.owner_url(settings))
    assert (runtime.username, runtime.password) == ("ordersaga_stock", "runtime-pw")
    assert (owner.username, owner.password) == ("owner", "inline")
    assert runtime_login(str(stock.owner_url(settings)), stock.database_url(settings)) == (
        "ordersaga_stock"
    )
    # without an owner login, the service's own URL migrates, and nothing is granted
    plain = Settings()
    assert stock.owner_url(plain) == stock.database_url(plain)
    assert runtime_login(stock.owner_url(plain), stock.database_url(plain)) is None


def test_a_root_certificate_needs_a_verifying_mode_and_a_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sslrootcert is for ssl=verify-full"):
        make_engine(f"postgresql+asyncpg://u:pw@h/db?ssl=require&sslrootcert={tmp_path}")
    with pytest.raises(ValueError, match="is not a file") as refused:
        make_engine(f"postgresql+asyncpg://u:pw@h/db?ssl=verify-full&sslrootcert={tmp_path}/x")
    assert "pw" not in str(refused.value).replace("***", "")


def test_the_command_line_names_an_unreadable_setting_file(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ordersaga.cli", "sagas", "list"],
        env={**os.environ, "ORDERSAGA_STOCK_DB_PASSWORD_FILE": str(tmp_path / "gone")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "ORDERSAGA_STOCK_DB_PASSWORD_FILE: cannot read" in done.stderr
    assert "Traceback" not in done.stderr

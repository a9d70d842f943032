"""``ordersaga token`` and ``ordersaga auth rotate-key``: tokens the API accepts, minted
with the local key, and a rotation that logs nobody out."""

import asyncio
import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ordersaga.auth import local_key
from ordersaga.auth.jwks import JwksFile
from ordersaga.auth.principal import Principal
from ordersaga.auth.verify import Audience, TokenVerifier
from ordersaga.cli.app import app

AUDIENCE = Audience("ordersaga", "ordersaga-api")


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def verify(token: str, data_dir: Path) -> Principal:
    jwks = local_key.jwks_file(local_key.default_key_file(data_dir))
    verifier = TokenVerifier(JwksFile(jwks, min_refresh=0), AUDIENCE)
    return asyncio.run(verifier.verify(token))


@pytest.fixture(autouse=True)
def no_key_file_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests name the data directory the key is created in."""
    monkeypatch.delenv("ORDERSAGA_AUTH_KEY_FILE", raising=False)


def test_a_customer_token_from_the_local_key(tmp_path: Path) -> None:
    token = run("token", "--user", "1", "--data-dir", str(tmp_path)).strip()

    assert verify(token, tmp_path) == Principal("1", frozenset())
    key_file = tmp_path / "auth" / "signing-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_an_operator_token_as_json(tmp_path: Path) -> None:
    shown = json.loads(
        run(
            "token",
            "--subject",
            "alice",
            "--role",
            "operator",
            "--ttl",
            "30m",
            "--data-dir",
            str(tmp_path),
            "--json",
        )
    )

    assert verify(shown["token"], tmp_path) == Principal("alice", frozenset({"operator"}))
    assert shown["roles"] == ["operator"] and shown["subject"] == "alice"
    assert shown["kid"] == local_key.load_or_create(tmp_path / "auth" / "signing-key.pem").kid


def test_rotation_keeps_the_old_tokens_valid(tmp_path: Path) -> None:
    before = run("token", "--user", "2", "--data-dir", str(tmp_path)).strip()

    said = run("auth", "rotate-key", "--data-dir", str(tmp_path))
    after = run("token", "--user", "3", "--data-dir", str(tmp_path)).strip()

    kids = local_key.published_kids(tmp_path / "auth" / "signing-key.pem")
    assert len(kids) == 2 and f"signing with key {kids[0]}" in said
    assert verify(before, tmp_path).subject == "2"
    assert verify(after, tmp_path).subject == "3"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--user", "1", "--ttl", "an hour"], "--ttl: 'an hour' is not a duration"),
        (["--user", "1", "--ttl", "2d"], "--ttl: a token lives more than 0 s and at most 1 day"),
        ([], "--user N for a customer, or --subject NAME"),
        (["--user", "1", "--subject", "x"], "--user N for a customer, or --subject NAME"),
        (["--user", "1", "--role", "admin"], "unknown role admin; the roles are: operator"),
    ],
)
def test_bad_options_say_what_is_wrong(tmp_path: Path, args: list[str], words: str) -> None:
    output = run("token", *args, "--data-dir", str(tmp_path), code=2)

    assert words in " ".join(output.split())

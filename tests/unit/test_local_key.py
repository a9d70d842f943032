"""The local signing key: created once, private to its owner, published in a JWKS
beside it, rotated without refusing the tokens signed before."""

import asyncio
import json
import stat
from pathlib import Path

import pytest

from ordersaga.auth import local_key
from ordersaga.auth.jwks import JwksFile
from ordersaga.auth.tokens import mint, parse_ttl
from ordersaga.auth.verify import Audience, InvalidToken, TokenVerifier

AUDIENCE = Audience("ordersaga", "ordersaga-api")


def test_the_key_is_created_once_owner_only_with_its_jwks_beside(tmp_path: Path) -> None:
    key_file = tmp_path / "auth" / "signing-key.pem"

    first = local_key.load_or_create(key_file)
    second = local_key.load_or_create(key_file)

    assert first.kid == second.kid
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    jwks = json.loads((tmp_path / "auth" / "signing-key.jwks.json").read_text())
    [published] = jwks["keys"]
    assert published["kid"] == first.kid and published["alg"] == "ES256"
    assert "d" not in published  # the public half only


async def test_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "signing-key.pem"
    old = local_key.load_or_create(key_file, now=0)
    old_token = mint(old, AUDIENCE, "1")

    new = local_key.rotate(key_file, now=100)
    verifier = TokenVerifier(JwksFile(local_key.jwks_file(key_file), min_refresh=0), AUDIENCE)

    assert local_key.load_or_create(key_file).kid == new.kid != old.kid
    assert local_key.published_kids(key_file) == [new.kid, old.kid]
    assert (await verifier.verify(old_token)).subject == "1"
    assert (await verifier.verify(mint(new, AUDIENCE, "2"))).subject == "2"


def test_a_retired_key_is_dropped_once_its_tokens_have_expired(tmp_path: Path) -> None:
    key_file = tmp_path / "signing-key.pem"
    first = local_key.load_or_create(key_file, now=0)
    second = local_key.rotate(key_file, now=1000)
    day = local_key.MAX_TTL.total_seconds()

    soon = local_key.rotate(key_file, now=1000 + day / 2)
    kids_soon = local_key.published_kids(key_file)
    later = local_key.rotate(key_file, now=1000 + day + 3600)

    # first was retired at 1000, a day and an hour ago; second only half a day ago.
    assert kids_soon == [soon.kid, second.kid, first.kid]
    assert local_key.published_kids(key_file) == [later.kid, soon.kid, second.kid]


async def test_a_key_added_to_the_jwks_file_is_found_without_a_restart(tmp_path: Path) -> None:
    key_file = tmp_path / "signing-key.pem"
    local_key.load_or_create(key_file)
    verifier = TokenVerifier(JwksFile(local_key.jwks_file(key_file), min_refresh=0), AUDIENCE)
    await verifier.verify(mint(local_key.load_or_create(key_file), AUDIENCE, "1"))

    rotated = local_key.rotate(key_file)

    assert (await verifier.verify(mint(rotated, AUDIENCE, "2"))).subject == "2"


def test_two_processes_creating_the_key_at_once_agree(tmp_path: Path) -> None:
    key_file = tmp_path / "signing-key.pem"

    async def both() -> list[str]:
        made = await asyncio.gather(
            *(asyncio.to_thread(local_key.load_or_create, key_file) for _ in range(8))
        )
        return [k.kid for k in made]

    kids = asyncio.run(both())

    assert len(set(kids)) == 1
    assert local_key.published_kids(key_file) == kids[:1]


def test_a_token_lives_at_most_a_day() -> None:
    key = local_key.SigningKey("k", local_key.ec.generate_private_key(local_key.ec.SECP256R1()))

    with pytest.raises(ValueError, match="at most 1 day"):
        mint(key, AUDIENCE, "1", ttl=parse_ttl("25h"))


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("1h", 3600), ("1d", 86400)]
)
def test_ttls_are_read_with_their_unit(text: str, seconds: int) -> None:
    assert parse_ttl(text).total_seconds() == seconds


def test_an_unreadable_ttl_says_what_it_expects() -> None:
    with pytest.raises(ValueError, match="not a duration such as 90s, 30m or 1h"):
        parse_ttl("an hour")


async def test_a_verifier_accepts_no_symmetric_algorithm() -> None:
    with pytest.raises(ValueError, match="not accepted"):
        TokenVerifier(JwksFile(Path("unused")), AUDIENCE, algorithms=("HS256",))


async def test_a_missing_jwks_file_is_no_keys_not_a_bad_token(tmp_path: Path) -> None:
    from ordersaga.auth.jwks import KeyUnavailable

    verifier = TokenVerifier(JwksFile(tmp_path / "missing.json"), AUDIENCE)
    key = local_key.load_or_create(tmp_path / "k.pem")

    with pytest.raises(KeyUnavailable, match=r"cannot read the JWKS file .*missing\.json"):
        await verifier.verify(mint(key, AUDIENCE, "1"))
    with pytest.raises(InvalidToken):
        await verifier.verify("garbage")

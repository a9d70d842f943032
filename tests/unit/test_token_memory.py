"""A verified token is remembered for a minute at most, and never past its expiry: a key
taken out of the JWKS stops being honoured within that minute."""

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest

from ordersaga.auth import local_key
from ordersaga.auth.jwks import JwksFile
from ordersaga.auth.tokens import mint
from ordersaga.auth.verify import REMEMBER_FOR, Audience, InvalidToken, TokenVerifier

AUDIENCE = Audience("ordersaga", "ordersaga-api", leeway=30)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def withdraw_every_key(key_file: Path) -> None:
    """Publish another key in place of the one that signed so far."""
    other = local_key.load_or_create(key_file.with_name("other.pem"))
    local_key.jwks_file(key_file).write_text(json.dumps({"keys": [other.public_jwk()]}))


async def test_a_withdrawn_key_is_refused_once_the_memory_lapses(tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    key = local_key.load_or_create(key_file)
    clock = Clock(time.time())
    keys = JwksFile(local_key.jwks_file(key_file), min_refresh=0, max_age=0)
    verifier = TokenVerifier(keys, AUDIENCE, clock=clock)
    token = mint(key, AUDIENCE, "1", now=clock.now)
    await verifier.verify(token)

    withdraw_every_key(key_file)
    remembered = await verifier.verify(token)
    clock.now += REMEMBER_FOR + 1

    assert remembered.subject == "1"
    with pytest.raises(InvalidToken, match="unknown key"):
        await verifier.verify(token)


async def test_a_token_is_remembered_no_longer_than_it_lives(tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    key = local_key.load_or_create(key_file)
    clock = Clock(time.time())
    keys = JwksFile(local_key.jwks_file(key_file), min_refresh=0, max_age=0)
    verifier = TokenVerifier(keys, AUDIENCE, clock=clock)
    # Lives 10 s: remembered until its expiry plus the leeway, 40 s, not a minute.
    token = mint(key, AUDIENCE, "1", ttl=timedelta(seconds=10), now=clock.now)
    await verifier.verify(token)
    withdraw_every_key(key_file)

    clock.now += 39
    within = await verifier.verify(token)
    clock.now += 2

    assert within.subject == "1"
    with pytest.raises(InvalidToken, match="unknown key"):
        await verifier.verify(token)  # checked again, so refused

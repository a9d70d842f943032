"""Tokens verified against a JWKS URL: a local HTTP server plays the identity provider
and rotates its keys; the verifier fetches again on an unknown ``kid``, but not more
often than its floor allows."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from httpx import ASGITransport, AsyncClient

from ordersaga.auth.jwks import JwksUrl, KeyUnavailable
from ordersaga.auth.local_key import SigningKey
from ordersaga.auth.tokens import mint
from ordersaga.auth.verify import Audience, InvalidToken, TokenVerifier
from ordersaga.config import Settings
from ordersaga.db.engine import make_engine
from ordersaga.services.order.api import create_app
from tests.auth_support import bearer
from tests.support import order_units

AUDIENCE = Audience("https://idp.example", "ordersaga-api")


class Provider:
    """The JWKS an identity provider publishes, and how often it was fetched."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        self.broken = False


@pytest.fixture
def provider() -> Iterator[tuple[Provider, str]]:
    state = Provider()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.fetches += 1
            if state.broken:
                self.send_error(500)
                return
            body = json.dumps({"keys": state.keys}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, ec.generate_private_key(ec.SECP256R1()))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_an_unknown_kid_fetches_the_rotated_jwks(provider: tuple[Provider, str]) -> None:
    state, url = provider
    old, new = ec_key("2026-01"), ec_key("2026-02")
    state.keys = [old.public_jwk()]
    clock = Clock()
    verifier = TokenVerifier(JwksUrl(url, min_refresh=30, clock=clock), AUDIENCE)

    first = await verifier.verify(mint(old, AUDIENCE, "1"))
    again = await verifier.verify(mint(old, AUDIENCE, "2"))
    fetched_before_rotation = state.fetches
    clock.now += 60
    state.keys = [new.public_jwk(), old.public_jwk()]  # the provider rotates
    rotated = await verifier.verify(mint(new, AUDIENCE, "3"))
    still_old = await verifier.verify(mint(old, AUDIENCE, "4"))

    assert (first.subject, again.subject) == ("1", "2")
    assert fetched_before_rotation == 1  # cached
    assert rotated.subject == "3" and still_old.subject == "4"
    assert state.fetches == 2


async def test_made_up_kids_fetch_no_more_than_the_floor_allows(
    provider: tuple[Provider, str],
) -> None:
    state, url = provider
    known = ec_key("known")
    state.keys = [known.public_jwk()]
    clock = Clock()
    verifier = TokenVerifier(JwksUrl(url, min_refresh=30, clock=clock), AUDIENCE)
    await verifier.verify(mint(known, AUDIENCE, "1"))

    refused = []
    for n in range(20):
        with pytest.raises(InvalidToken) as error:
            await verifier.verify(mint(ec_key(f"made-up-{n}"), AUDIENCE, "1"))
        refused.append(str(error.value))
    fetches_within_the_floor = state.fetches
    clock.now += 31
    with pytest.raises(InvalidToken):
        await verifier.verify(mint(ec_key("made-up-late"), AUDIENCE, "1"))

    assert set(refused) == {"token is signed with an unknown key (kid)"}
    assert fetches_within_the_floor == 1  # loaded just now: no look again within the floor
    assert state.fetches == 2  # past the floor, one look again


async def test_rsa_keys_and_rs256_tokens_are_accepted(provider: tuple[Provider, str]) -> None:
    import jwt
    from jwt.algorithms import RSAAlgorithm

    state, url = provider
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    state.keys = [{**jwk, "kid": "rsa-1", "use": "sig"}]
    claims = {"iss": AUDIENCE.issuer, "aud": AUDIENCE.audience, "sub": "7", "iat": 1, "exp": 2**40}
    token = jwt.encode(claims, private, algorithm="RS256", headers={"kid": "rsa-1"})
    verifier = TokenVerifier(JwksUrl(url), AUDIENCE)

    assert (await verifier.verify(token)).subject == "7"


async def test_an_unreachable_jwks_is_a_503_not_a_401(
    provider: tuple[Provider, str], db_url: str
) -> None:
    state, url = provider
    state.broken = True
    settings = Settings(auth_jwks_url=url, auth_issuer=AUDIENCE.issuer)
    engine = make_engine(db_url)
    verifier = TokenVerifier(JwksUrl(url), AUDIENCE)
    app = create_app(order_units(engine), settings, verifier=verifier)
    token = mint(ec_key("k"), AUDIENCE, "1")
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        response = await client.get("/api/v1/orders", headers=bearer(token))
    await engine.dispose()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    with pytest.raises(KeyUnavailable):
        await JwksUrl(url).key("k")


async def test_the_api_verifies_against_the_url_the_settings_name(
    provider: tuple[Provider, str], db_url: str, tmp_path: Path
) -> None:
    from ordersaga.auth import setup as auth_setup

    state, url = provider
    key = ec_key("idp-key")
    state.keys = [key.public_jwk()]
    settings = Settings(
        auth_jwks_url=url,
        auth_issuer=AUDIENCE.issuer,
        auth_audience=AUDIENCE.audience,
        auth_key_file=tmp_path / "unused" / "key.pem",
    )
    engine = make_engine(db_url)
    app = create_app(order_units(engine), settings, verifier=auth_setup.verifier(settings))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        response = await client.get("/api/v1/orders", headers=bearer(mint(key, AUDIENCE, "1")))
    await engine.dispose()

    assert response.status_code == 200
    assert state.fetches == 1
    assert not (tmp_path / "unused").exists()  # no local key made when a URL is set

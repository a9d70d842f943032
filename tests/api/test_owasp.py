"""The order API against the OWASP API Security Top 10 items that apply to it; each
test is named after its item. The admin API's function-level authorization (API5) is
tested with the admin API.

The API here verifies tokens signed by a key of the test's own, with authentication on
as by default.
"""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.auth import local_key
from ordersaga.auth import setup as auth_setup
from ordersaga.auth.local_key import SigningKey
from ordersaga.auth.tokens import LocalTokens, mint
from ordersaga.auth.verify import Audience
from ordersaga.config import Settings
from ordersaga.db.engine import make_engine
from ordersaga.services.order.api import create_app
from tests.auth_support import bearer
from tests.support import order_units

ORDERS = "/api/v1/orders"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(auth_key_file=tmp_path / "auth" / "signing-key.pem", api_rate_limit=0)


@pytest.fixture
def key(settings: Settings) -> SigningKey:
    assert settings.auth_key_file is not None
    return local_key.load_or_create(settings.auth_key_file)


@pytest.fixture
def tokens(settings: Settings, key: SigningKey) -> LocalTokens:
    return auth_setup.local_tokens(settings)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(db_url)
    yield engine
    await engine.dispose()


def app_of(engine: AsyncEngine, settings: Settings) -> FastAPI:
    return create_app(order_units(engine), settings, verifier=auth_setup.verifier(settings))


@pytest.fixture
async def client(
    engine: AsyncEngine, settings: Settings, key: SigningKey
) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app_of(engine, settings))
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def place_as(client: AsyncClient, tokens: LocalTokens, user: int) -> dict[str, Any]:
    response = await client.post(
        ORDERS, json={"productID": 1}, headers=bearer(tokens.for_user(user))
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# API1: broken object-level authorization.


async def test_api1_bola_another_users_order_is_404_like_a_missing_one(
    client: AsyncClient, tokens: LocalTokens
) -> None:
    order = await place_as(client, tokens, 1)
    as_user_2 = bearer(tokens.for_user(2))

    theirs = await client.get(f"{ORDERS}/{order['orderID']}", headers=as_user_2)
    missing_id = uuid4()
    missing = await client.get(f"{ORDERS}/{missing_id}", headers=as_user_2)

    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["detail"].replace(order["orderID"], "X") == missing.json()[
        "detail"
    ].replace(str(missing_id), "X")
    assert theirs.headers.keys() == missing.headers.keys()


async def test_api1_bola_a_customer_lists_only_its_own_orders(
    client: AsyncClient, tokens: LocalTokens
) -> None:
    mine = await place_as(client, tokens, 2)
    await place_as(client, tokens, 1)
    as_user_2 = bearer(tokens.for_user(2))

    listed = (await client.get(ORDERS, headers=as_user_2)).json()
    asked_for_user_1 = (await client.get(ORDERS, params={"userID": 1}, headers=as_user_2)).json()

    assert [o["orderID"] for o in listed["items"]] == [mine["orderID"]]
    assert listed["total"] == 1
    assert asked_for_user_1["items"] == [] and asked_for_user_1["total"] == 0


async def test_api1_bola_an_operator_reads_every_order(
    client: AsyncClient, tokens: LocalTokens
) -> None:
    order = await place_as(client, tokens, 1)
    await place_as(client, tokens, 2)
    as_operator = bearer(tokens.operator())

    one = await client.get(f"{ORDERS}/{order['orderID']}", headers=as_operator)
    listed = (await client.get(ORDERS, headers=as_operator)).json()

    assert one.status_code == 200 and one.json()["userID"] == 1
    assert {o["userID"] for o in listed["items"]} == {1, 2}


async def test_api1_bola_a_customer_places_orders_for_itself_only(
    client: AsyncClient, tokens: LocalTokens
) -> None:
    as_user_1 = bearer(tokens.for_user(1))

    own = await client.post(ORDERS, json={"userID": 1, "productID": 1}, headers=as_user_1)
    implied = await client.post(ORDERS, json={"productID": 1}, headers=as_user_1)
    other = await client.post(ORDERS, json={"userID": 2, "productID": 1}, headers=as_user_1)

    assert own.status_code == 201 and own.json()["userID"] == 1
    assert implied.status_code == 201 and implied.json()["userID"] == 1
    assert other.status_code == 403
    assert other.json()["errors"][0]["field"] == "userID"
    assert "its own userID (1)" in other.json()["detail"]


async def test_api1_bola_an_operator_must_name_the_user(
    client: AsyncClient, tokens: LocalTokens
) -> None:
    response = await client.post(ORDERS, json={"productID": 1}, headers=bearer(tokens.operator()))

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "userID"


async def test_api1_bola_a_subject_that_is_no_user_places_nothing(
    client: AsyncClient, key: SigningKey, settings: Settings
) -> None:
    audience = auth_setup.audience_of(settings)
    for subject in ("alice", "07", str(2**31)):
        token = mint(key, audience, subject)

        response = await client.post(ORDERS, json={"productID": 1}, headers=bearer(token))

        assert response.status_code == 403, subject
        assert "subject is not a user id" in response.json()["detail"]


# API2: broken authentication.


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], claims: dict[str, Any], sign: Any = None) -> str:
    """A token put together by hand, signed (or not) by ``sign(signing_input)``."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64(signature)}"


def claims_for(audience: Audience, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": audience.issuer,
        "aud": audience.audience,
        "sub": "1",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def flipped(signature: str) -> str:
    """``signature`` with its first bytes changed."""
    first = "B" if signature[0] == "A" else "A"
    return first + signature[1:]


def bad_tokens(key: SigningKey, audience: Audience) -> dict[str, str]:
    """Every kind of token the API must refuse, by name."""
    other = SigningKey("unknown-kid", ec.generate_private_key(ec.SECP256R1()))
    impostor = SigningKey(key.kid, ec.generate_private_key(ec.SECP256R1()))
    public_pem = key.public_jwk()  # what an attacker can read from the JWKS
    secret = json.dumps(public_pem).encode()
    good = mint(key, audience, "1")
    head, body, signature = good.split(".")
    tampered_body = b64(json.dumps(claims_for(audience, sub="2")).encode())
    return {
        "expired": mint(key, audience, "1", ttl=timedelta(minutes=5), now=time.time() - 3600),
        "wrong audience": mint(key, Audience(audience.issuer, "someone-else"), "1"),
        "wrong issuer": mint(key, Audience("https://evil.example", audience.audience), "1"),
        "alg none": forged({"alg": "none", "typ": "JWT"}, claims_for(audience)),
        "alg none with kid": forged({"alg": "none", "kid": key.kid}, claims_for(audience)),
        "HS256 with the public key as secret": forged(
            {"alg": "HS256", "kid": key.kid},
            claims_for(audience),
            lambda data: hmac.new(secret, data, hashlib.sha256).digest(),
        ),
        "unknown kid": other.sign(claims_for(audience)),
        "signed by another key under the right kid": impostor.sign(claims_for(audience)),
        "tampered claims": f"{head}.{tampered_body}.{signature}",
        "tampered signature": f"{head}.{body}.{flipped(signature)}",
        "no exp": key.sign(claims_for(audience, exp=None)),
        "not a JWT": "not-a-token",
    }


BAD_TOKEN_NAMES = [
    "expired",
    "wrong audience",
    "wrong issuer",
    "alg none",
    "alg none with kid",
    "HS256 with the public key as secret",
    "unknown kid",
    "signed by another key under the right kid",
    "tampered claims",
    "tampered signature",
    "no exp",
    "not a JWT",
]


async def test_api2_broken_authentication_no_token_is_401_with_a_challenge(
    client: AsyncClient,
) -> None:
    for method, path in (
        ("POST", ORDERS),
        ("GET", ORDERS),
        ("GET", f"{ORDERS}/{uuid4()}"),
        ("GET", "/api/v1/products"),
    ):
        response = await client.request(method, path, json={"userID": 1, "productID": 1})

        assert response.status_code == 401, (method, path)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "ordersaga token" in response.json()["detail"]


@pytest.mark.parametrize("kind", BAD_TOKEN_NAMES)
async def test_api2_broken_authentication_bad_token_is_401(
    client: AsyncClient, key: SigningKey, settings: Settings, engine: AsyncEngine, kind: str
) -> None:
    token = bad_tokens(key, auth_setup.audience_of(settings))[kind]

    placed = await client.post(ORDERS, json={"productID": 1}, headers=bearer(token))
    listed = await client.get(ORDERS, headers=bearer(token))

    for response in (placed, listed):
        assert response.status_code == 401, response.text
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer") and 'error="invalid_token"' in challenge
        assert response.json()["detail"].startswith("token")
        assert token not in response.text


async def test_api2_broken_authentication_reasons_say_what_is_wrong(
    client: AsyncClient, key: SigningKey, settings: Settings
) -> None:
    tokens = bad_tokens(key, auth_setup.audience_of(settings))
    expected = {
        "expired": "token has expired",
        "wrong audience": "token is not meant for this API (audience)",
        "wrong issuer": "token was not issued by a trusted issuer",
        "alg none": "token algorithm 'none' is not accepted; use RS256, ES256",
        "HS256 with the public key as secret": "token algorithm 'HS256' is not accepted",
        "unknown kid": "token is signed with an unknown key (kid)",
        "tampered signature": "token signature does not verify",
        "no exp": "token has no exp claim",
    }
    for kind, words in expected.items():
        response = await client.get(ORDERS, headers=bearer(tokens[kind]))
        assert words in response.json()["detail"], kind


async def test_api2_clock_skew_within_the_leeway_is_accepted(
    client: AsyncClient, key: SigningKey, settings: Settings
) -> None:
    audience = auth_setup.audience_of(settings)
    just_expired = key.sign(claims_for(audience, exp=int(time.time()) - 5))
    long_expired = key.sign(claims_for(audience, exp=int(time.time()) - 60))

    assert (await client.get(ORDERS, headers=bearer(just_expired))).status_code == 200
    assert (await client.get(ORDERS, headers=bearer(long_expired))).status_code == 401


async def test_api2_health_and_readiness_stay_open(client: AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200


# API3: broken object property-level authorization.


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "ORDER_COMPLETED"),
        ("amount", 0),
        # A fixed id: the test's name carries it, and every pytest-xdist worker must
        # collect the same names.
        ("orderID", "073aad21-9b4b-44ef-9e98-d3692cc7746f"),
        ("createdAt", "2020-01-01T00:00:00Z"),
        ("updatedAt", "2020-01-01T00:00:00Z"),
        ("reason", "free"),
    ],
)
async def test_api3_property_level_authorization_server_fields_are_422(
    client: AsyncClient, tokens: LocalTokens, field: str, value: Any
) -> None:
    response = await client.post(
        ORDERS, json={"productID": 1, field: value}, headers=bearer(tokens.for_user(1))
    )

    assert response.status_code == 422
    body = response.json()
    assert [e["field"] for e in body["errors"]] == [field]
    assert f"{field}: is not an accepted field (the server sets it)" in body["detail"]


# API4: unrestricted resource consumption.


async def test_api4_resource_consumption_rate_limit_is_429_with_retry_after(
    engine: AsyncEngine, settings: Settings, tokens: LocalTokens
) -> None:
    limited = settings.model_copy(update={"api_rate_limit": 0.5, "api_rate_limit_burst": 3})
    transport = ASGITransport(app=app_of(engine, limited))
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        user_1 = [
            await client.post(ORDERS, json={"productID": 1}, headers=bearer(tokens.for_user(1)))
            for _ in range(4)
        ]
        user_2 = await client.post(
            ORDERS, json={"productID": 1}, headers=bearer(tokens.for_user(2))
        )
        reads = await client.get(ORDERS, headers=bearer(tokens.for_user(1)))

    assert [r.status_code for r in user_1] == [201, 201, 201, 429]
    assert user_1[-1].headers["Retry-After"] == "2"
    assert "retry after 2 s" in user_1[-1].json()["detail"]
    assert user_2.status_code == 201  # each client has its own bucket
    assert reads.status_code == 200 and reads.json()["total"] == 3


async def test_api4_resource_consumption_oversized_body_is_413(
    client: AsyncClient, tokens: LocalTokens
) -> None:
    body = json.dumps({"productID": 1, "pad": "x" * 20_000})

    response = await client.post(
        ORDERS,
        content=body,
        headers={**bearer(tokens.for_user(1)), "Content-Type": "application/json"},
    )

    assert response.status_code == 413


async def test_api4_resource_consumption_quantity_and_page_limits_are_422(
    client: AsyncClient, tokens: LocalTokens, settings: Settings
) -> None:
    as_user_1 = bearer(tokens.for_user(1))
    too_many = await client.post(
        ORDERS,
        json={"productID": 1, "quantity": settings.max_quantity + 1},
        headers=as_user_1,
    )
    huge_page = await client.get(ORDERS, params={"limit": 501}, headers=as_user_1)

    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "quantity"
    assert huge_page.status_code == 422
    assert huge_page.json()["errors"][0]["field"] == "limit"

"""Bad input to the order API: each is answered 4xx with a message naming what is wrong,
and none creates an order or a message. Never a 5xx."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings
from ordersaga.db.engine import make_engine
from ordersaga.services.order.api import create_app
from ordersaga.services.order.limits import MAX_BODY_BYTES
from ordersaga.services.order.schemas import INT_MAX
from ordersaga.services.order.tables import orders, outbox
from tests.auth_support import operator_client, verifier
from tests.support import order_units

ORDERS = "/api/v1/orders"
VALID = {"userID": 1, "productID": 1, "quantity": 1}


class WakeCounter:
    """The relay's wake-up, counting the commits that woke it."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def wake() -> WakeCounter:
    return WakeCounter()


@pytest.fixture
def app(engine: AsyncEngine, wake: WakeCounter) -> FastAPI:
    return create_app(order_units(engine, wake), Settings(), verifier=verifier())


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with operator_client(app) as client:
        yield client


async def count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def assert_nothing_written(engine: AsyncEngine) -> None:
    assert (await count(engine, orders), await count(engine, outbox)) == (0, 0)


def assert_refused(response: Response, status: int, field: str, *words: str) -> None:
    """``status``, with an ErrorBody whose sentence and field errors name ``field``, and
    whose sentence says each of ``words``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert field in body["detail"], body
    assert field in [e["field"] for e in body["errors"]], body
    for word in words:
        assert word in body["detail"], body


# --- body size ----------------------------------------------------------------------


def padded(body: dict[str, Any], size: int) -> bytes:
    """``body`` as JSON, padded with spaces to exactly ``size`` bytes."""
    text = str(body).replace("'", '"').encode()
    return text + b" " * (size - len(text))


async def test_body_over_the_limit_is_413_naming_it(
    client: AsyncClient, engine: AsyncEngine
) -> None:
    content = padded(VALID, MAX_BODY_BYTES + 1)

    response = await client.post(
        ORDERS, content=content, headers={"Content-Type": "application/json"}
    )

    assert_refused(response, 413, "body", f"{MAX_BODY_BYTES} bytes")
    await assert_nothing_written(engine)


async def test_body_at_the_limit_is_read(client: AsyncClient) -> None:
    content = padded(VALID, MAX_BODY_BYTES)

    response = await client.post(
        ORDERS, content=content, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 201, response.text


class Chunks:
    """A chunked body without a Content-Length, counting how much of it was sent."""

    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            self.sent += len(part)
            yield part


async def post_chunked(client: AsyncClient, body: Chunks) -> Response:
    request = client.build_request(
        "POST", ORDERS, content=body, headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in request.headers
    return await client.send(request)


async def test_chunked_body_over_the_limit_is_413_before_it_is_all_read(
    client: AsyncClient, engine: AsyncEngine
) -> None:
    body = Chunks([b" " * 1024] * 1024)  # 1 MiB, announced nowhere

    response = await post_chunked(client, body)

    assert_refused(response, 413, "body", f"{MAX_BODY_BYTES} bytes")
    assert body.sent <= MAX_BODY_BYTES + 1024
    await assert_nothing_written(engine)


async def test_chunked_body_under_the_limit_is_read(client: AsyncClient) -> None:
    content = padded(VALID, 4000)
    body = Chunks([content[start : start + 1000] for start in range(0, 4000, 1000)])

    response = await post_chunked(client, body)

    assert response.status_code == 201, response.text
    assert body.sent == 4000


async def test_body_limit_is_an_argument(engine: AsyncEngine) -> None:
    app = create_app(
        order_units(engine, WakeCounter()), Settings(), max_body_bytes=64, verifier=verifier()
    )
    async with operator_client(app) as client:
        small = await client.post(ORDERS, content=padded(VALID, 64))
        large = await client.post(ORDERS, content=padded(VALID, 65))

    assert small.status_code == 422  # read (and refused for its content type)
    assert_refused(large, 413, "body", "64 bytes")


# --- the order's fields -------------------------------------------------------------


@pytest.mark.parametrize("quantity", [101, 10**6, 10**30, 2**63], ids=str)
async def test_huge_quantity_is_422_naming_the_limit(
    client: AsyncClient, engine: AsyncEngine, quantity: int
) -> None:
    response = await client.post(ORDERS, json={**VALID, "quantity": quantity})

    assert_refused(response, 422, "quantity", "less than or equal to 100")
    await assert_nothing_written(engine)


@pytest.mark.parametrize("quantity", [0, -1, -(2**63)], ids=str)
async def test_quantity_below_one_is_422(
    client: AsyncClient, engine: AsyncEngine, quantity: int
) -> None:
    response = await client.post(ORDERS, json={**VALID, "quantity": quantity})

    assert_refused(response, 422, "quantity", "greater than or equal to 1")
    await assert_nothing_written(engine)


WRONG_TYPES: list[tuple[str, Any, str]] = [
    ("string", "1", '"1"'),
    ("float", 1.5, "1.5"),
    ("whole float", 1.0, "1.0"),
    ("bool", True, "true"),
    ("null", None, "null"),
    ("list", [1], "an array"),
    ("object", {"value": 1}, "an object"),
]


@pytest.mark.parametrize("field", ["userID", "productID", "quantity"])
@pytest.mark.parametrize(
    ("kind", "value", "shown"), WRONG_TYPES, ids=[kind for kind, _, _ in WRONG_TYPES]
)
async def test_wrong_type_is_422_naming_field_and_value(
    client: AsyncClient, engine: AsyncEngine, field: str, kind: str, value: Any, shown: str
) -> None:
    response = await client.post(ORDERS, json={**VALID, field: value})

    assert_refused(response, 422, field, f"must be an integer, not {shown}")
    await assert_nothing_written(engine)


@pytest.mark.parametrize("product", [4, 999, INT_MAX])
async def test_unknown_product_is_422_listing_known_ones(
    client: AsyncClient, engine: AsyncEngine, wake: WakeCounter, product: int
) -> None:
    response = await client.post(ORDERS, json={**VALID, "productID": product})

    assert_refused(response, 422, "productID", f"unknown productID {product}", "1, 2, 3")
    await assert_nothing_written(engine)
    assert wake.count == 0


@pytest.mark.parametrize("field", ["amount", "price", "status", "orderID", "userId"])
async def test_unknown_field_is_422_listing_accepted_ones(
    client: AsyncClient, engine: AsyncEngine, field: str
) -> None:
    response = await client.post(ORDERS, json={**VALID, field: 1})

    assert_refused(response, 422, field, "not an accepted field", "userID, productID, quantity")
    await assert_nothing_written(engine)


# --- the body as a whole ------------------------------------------------------------

MALFORMED: list[tuple[str, bytes, str]] = [
    ("truncated", b'{"userID": 1, "productID": ', "malformed JSON"),
    ("trailing garbage", b'{"userID": 1, "productID": 1} x', "malformed JSON at character"),
    ("single quotes", b"{'userID': 1, 'productID': 1}", "malformed JSON"),
    ("empty", b"", "body: "),
    ("not utf-8", b'{"userID": "\xff"}', "malformed JSON"),
    ("nested too deeply", b"[" * 10_000, "nested too deeply"),
    ("array", b"[1, 2]", "must be a JSON object"),
    ("number", b"42", "must be a JSON object"),
]


@pytest.mark.parametrize(("case", "content", "words"), MALFORMED, ids=[c for c, _, _ in MALFORMED])
async def test_malformed_json_is_422_naming_body(
    client: AsyncClient, engine: AsyncEngine, case: str, content: bytes, words: str
) -> None:
    response = await client.post(
        ORDERS, content=content, headers={"Content-Type": "application/json"}
    )

    assert_refused(response, 422, "body", words)
    await assert_nothing_written(engine)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
    ],
)
async def test_other_content_type_is_422_asking_for_json(
    client: AsyncClient, engine: AsyncEngine, content_type: str
) -> None:
    # 422 rather than 415: one status for "the body is not what this endpoint reads",
    # whatever the reason, with the fix in the message. The OpenAPI description says so.
    response = await client.post(
        ORDERS, content=padded(VALID, 60), headers={"Content-Type": content_type}
    )

    assert_refused(response, 422, "body", "Content-Type: application/json")
    await assert_nothing_written(engine)


# --- Idempotency-Key ----------------------------------------------------------------


async def test_retry_with_key_makes_one_order_and_one_message(
    client: AsyncClient, engine: AsyncEngine, wake: WakeCounter
) -> None:
    key = {"Idempotency-Key": "retry-1"}

    first = await client.post(ORDERS, json=VALID, headers=key)
    retry = await client.post(ORDERS, json=VALID, headers=key)

    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json()["orderID"] == first.json()["orderID"]
    assert (await count(engine, orders), await count(engine, outbox)) == (1, 1)
    assert wake.count == 1


async def test_retry_without_key_makes_two_orders(
    client: AsyncClient, engine: AsyncEngine, wake: WakeCounter
) -> None:
    # Documented: without an Idempotency-Key every POST places a new order.
    first = await client.post(ORDERS, json=VALID)
    retry = await client.post(ORDERS, json=VALID)

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json()["orderID"] != first.json()["orderID"]
    assert (await count(engine, orders), await count(engine, outbox)) == (2, 2)
    assert wake.count == 2


async def test_key_of_256_characters_is_422_naming_header_and_limit(
    client: AsyncClient, engine: AsyncEngine
) -> None:
    response = await client.post(ORDERS, json=VALID, headers={"Idempotency-Key": "k" * 256})

    assert_refused(response, 422, "Idempotency-Key", "255")
    await assert_nothing_written(engine)


async def test_key_of_255_characters_is_accepted(client: AsyncClient) -> None:
    response = await client.post(ORDERS, json=VALID, headers={"Idempotency-Key": "k" * 255})

    assert response.status_code == 201, response.text


# --- reading orders -----------------------------------------------------------------


@pytest.mark.parametrize(
    "order_id",
    ["not-a-uuid", "123", "3fa85f64-5717-4562-b3fc-2c963f66afa6x", "%00", "x" * 1000],
    ids=["word", "number", "one char too many", "nul", "1000 chars"],
)
async def test_get_with_bad_uuid_is_422_naming_order_id(client: AsyncClient, order_id: str) -> None:
    response = await client.get(f"{ORDERS}/{order_id}")

    assert_refused(response, 422, "orderID", "must be a UUID")


BAD_PAGES: list[tuple[dict[str, Any], str, str]] = [
    ({"limit": 0}, "limit", "greater than or equal to 1"),
    ({"limit": 10**9}, "limit", "less than or equal to 500"),
    ({"limit": "ten"}, "limit", "must be an integer"),
    ({"offset": -1}, "offset", "greater than or equal to 0"),
    ({"offset": 2**63}, "offset", f"less than or equal to {INT_MAX}"),
]


@pytest.mark.parametrize(
    ("params", "field", "words"), BAD_PAGES, ids=[str(p) for p, _, _ in BAD_PAGES]
)
async def test_bad_pagination_is_422_naming_param_and_bound(
    client: AsyncClient, params: dict[str, Any], field: str, words: str
) -> None:
    response = await client.get(ORDERS, params=params)

    assert_refused(response, 422, field, words)


# --- methods and failures -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", ORDERS, "GET, POST"),
        ("PUT", ORDERS, "GET, POST"),
        ("DELETE", f"{ORDERS}/3fa85f64-5717-4562-b3fc-2c963f66afa6", "GET"),
        ("POST", "/api/v1/products", "GET"),
    ],
)
async def test_wrong_method_is_405_allowing_every_method_of_the_path(
    client: AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path)

    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert response.json()["detail"] == f"{method} is not allowed on {path}; use {allowed}"


async def test_allow_header_behind_a_root_path(app: FastAPI) -> None:
    transport = ASGITransport(app=app, root_path="/shop")
    async with operator_client(transport=transport) as client:
        response = await client.delete(f"/shop{ORDERS}")

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"


async def test_unexpected_failure_is_a_json_500(app: FastAPI) -> None:
    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken)
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with operator_client(transport=transport) as client:
        response = await client.get("/broken")

    assert response.status_code == 500
    assert response.json() == {
        "detail": "internal error; the request may be retried later",
        "errors": [],
    }

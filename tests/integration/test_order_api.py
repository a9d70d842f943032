"""The order service's HTTP API on a real SQLite database; no broker needed."""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import create_engine, event, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings
from ordersaga.contracts import headers as h
from ordersaga.contracts import topics
from ordersaga.contracts.codec import decode
from ordersaga.contracts.messages import OrderCreated
from ordersaga.contracts.statuses import OrderStatus
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.db.timestamps import utc_now
from ordersaga.observability.tracing import parse_traceparent
from ordersaga.services.order.api import create_app
from ordersaga.services.order.tables import metadata, orders, outbox
from ordersaga.services.order.wiring import seed
from tests.auth_support import operator_client, verifier
from tests.fault_kinds import SURROUNDINGS, UNEXPECTED
from tests.support import order_units

ORDERS = "/api/v1/orders"


class WakeCounter:
    """The relay's wake-up, counting how often an order's commit woke it."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "order.sqlite3"


@pytest.fixture
async def engine(db_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_url(db_path))
    await create_schema(engine, metadata)
    async with engine.begin() as conn:
        await seed(conn)
    yield engine
    await engine.dispose()


@pytest.fixture
def wake() -> WakeCounter:
    return WakeCounter()


@pytest.fixture
async def client(engine: AsyncEngine, wake: WakeCounter) -> AsyncIterator[AsyncClient]:
    app = create_app(order_units(engine, wake), Settings(), verifier=verifier())
    async with operator_client(app) as client:
        yield client


async def count_rows(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def outbox_rows(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(outbox).order_by(outbox.c.id))).all())


def assert_names_field(response: Response, field: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert field in body["detail"], body
    assert field in [e["field"] for e in body["errors"]], body


# --- placing an order ---------------------------------------------------------------


async def test_place_order_prices_from_catalog(client: AsyncClient, wake: WakeCounter) -> None:
    response = await client.post(ORDERS, json={"userID": 1, "productID": 2, "quantity": 3})

    assert response.status_code == 201, response.text
    order = response.json()
    assert response.headers["Location"] == f"{ORDERS}/{order['orderID']}"
    assert order["amount"] == 90.0
    assert order["status"] == "ORDER_CREATED"
    assert order["reason"] is None
    assert (order["userID"], order["productID"], order["quantity"]) == (1, 2, 3)
    assert order["createdAt"] == order["updatedAt"]
    assert UUID(order["orderID"]).version == 4
    assert wake.count == 1


async def test_quantity_defaults_to_one(client: AsyncClient) -> None:
    response = await client.post(ORDERS, json={"userID": 1, "productID": 3})

    assert response.status_code == 201
    assert response.json()["quantity"] == 1
    assert response.json()["amount"] == 50.0


async def test_client_sent_amount_is_refused(client: AsyncClient, engine: AsyncEngine) -> None:
    response = await client.post(ORDERS, json={"userID": 1, "productID": 1, "amount": 0.01})

    assert_names_field(response, "amount")
    assert "userID, productID, quantity" in response.json()["detail"]
    assert await count_rows(engine, orders) == 0


async def test_order_created_is_in_outbox(client: AsyncClient, engine: AsyncEngine) -> None:
    response = await client.post(ORDERS, json={"userID": 3, "productID": 1, "quantity": 2})
    order_id = response.json()["orderID"]

    [row] = await outbox_rows(engine)
    assert row.topic == topics.ORDER_CREATED
    assert row.message_key == order_id
    assert json.loads(row.value) == {
        "orderID": order_id,
        "userID": 3,
        "productID": 1,
        "quantity": 2,
        "amount": 40.0,
        "status": "ORDER_CREATED",
    }
    message = decode(topics.ORDER_CREATED, row.value)
    assert isinstance(message, OrderCreated)
    assert message.amount == Decimal("40.00")
    headers = json.loads(row.headers)
    assert UUID(headers[h.MESSAGE_ID])
    assert headers[h.MESSAGE_TYPE] == "OrderCreated"
    assert headers[h.SAGA_ID] == order_id
    assert headers[h.CAUSATION_ID] == ""
    # A trace of its own, not named after the saga: a caller's trace may hold it.
    assert parse_traceparent(headers[h.TRACEPARENT]) is not None
    assert not headers[h.TRACEPARENT].startswith(f"00-{UUID(order_id).hex}-")
    assert headers[h.SENT_AT]
    assert headers[h.SCHEMA_VERSION] == h.CURRENT_SCHEMA_VERSION


async def test_unknown_product_names_product_id(
    client: AsyncClient, engine: AsyncEngine, wake: WakeCounter
) -> None:
    response = await client.post(ORDERS, json={"userID": 1, "productID": 9})

    assert_names_field(response, "productID")
    assert response.json()["detail"] == "unknown productID 9; known products: 1, 2, 3"
    assert await count_rows(engine, orders) == 0
    assert await count_rows(engine, outbox) == 0
    assert wake.count == 0


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("unknown field", {"userID": 1, "productID": 1, "colour": "red"}, "colour"),
    ("quantity 0", {"userID": 1, "productID": 1, "quantity": 0}, "quantity"),
    ("quantity -1", {"userID": 1, "productID": 1, "quantity": -1}, "quantity"),
    ("quantity 101", {"userID": 1, "productID": 1, "quantity": 101}, "quantity"),
    ("quantity 10**30", {"userID": 1, "productID": 1, "quantity": 10**30}, "quantity"),
    ("quantity string", {"userID": 1, "productID": 1, "quantity": "2"}, "quantity"),
    ("quantity float", {"userID": 1, "productID": 1, "quantity": 1.5}, "quantity"),
    ("quantity whole float", {"userID": 1, "productID": 1, "quantity": 2.0}, "quantity"),
    ("quantity true", {"userID": 1, "productID": 1, "quantity": True}, "quantity"),
    ("quantity null", {"userID": 1, "productID": 1, "quantity": None}, "quantity"),
    ("userID true", {"userID": True, "productID": 1}, "userID"),
    ("userID 0", {"userID": 0, "productID": 1}, "userID"),
    ("userID 10**30", {"userID": 10**30, "productID": 1}, "userID"),
    ("productID list", {"userID": 1, "productID": [1]}, "productID"),
    ("productID 2**31", {"userID": 1, "productID": 2**31}, "productID"),
    ("missing userID", {"productID": 1}, "userID"),
    ("array body", [{"userID": 1, "productID": 1}], "body"),
    ("string body", "order", "body"),
    ("null body", None, "body"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
async def test_bad_body_is_422_naming_field(
    client: AsyncClient, engine: AsyncEngine, case: str, body: Any, field: str
) -> None:
    response = await client.post(ORDERS, json=body)

    assert_names_field(response, field)
    assert await count_rows(engine, orders) == 0


async def test_quantity_limit_message(client: AsyncClient) -> None:
    response = await client.post(ORDERS, json={"userID": 1, "productID": 1, "quantity": 101})

    assert response.json() == {
        "detail": "quantity: must be less than or equal to 100",
        "errors": [{"field": "quantity", "message": "must be less than or equal to 100"}],
    }


async def test_quantity_limit_comes_from_settings(engine: AsyncEngine) -> None:
    app = create_app(
        order_units(engine, WakeCounter()), Settings(max_quantity=3), verifier=verifier()
    )
    async with operator_client(app) as client:
        ok = await client.post(ORDERS, json={"userID": 1, "productID": 1, "quantity": 3})
        too_many = await client.post(ORDERS, json={"userID": 1, "productID": 1, "quantity": 4})

    assert ok.status_code == 201
    assert too_many.json()["detail"] == "quantity: must be less than or equal to 3"


@pytest.mark.parametrize(
    "content",
    [
        b'{"userID": 1, "productID": ',
        b"",
        b"not json",
        b'{"userID": 1,}',
        b"\xff\xfe",
        b'{"userID": ' + b"1" * 5000 + b', "productID": 1}',
    ],
    ids=["truncated", "empty", "text", "trailing comma", "not utf-8", "5000 digits"],
)
async def test_malformed_body_is_422(
    client: AsyncClient, engine: AsyncEngine, content: bytes
) -> None:
    response = await client.post(
        ORDERS, content=content, headers={"Content-Type": "application/json"}
    )

    assert_names_field(response, "body")
    assert await count_rows(engine, orders) == 0


async def test_body_without_json_content_type_is_422(client: AsyncClient) -> None:
    response = await client.post(ORDERS, content=b'{"userID": 1, "productID": 1}')

    assert_names_field(response, "body")
    assert "JSON object" in response.json()["detail"]


# --- Idempotency-Key ----------------------------------------------------------------


async def test_idempotent_replay_returns_same_order(
    client: AsyncClient, engine: AsyncEngine, wake: WakeCounter
) -> None:
    body = {"userID": 1, "productID": 1, "quantity": 2}
    key = {"Idempotency-Key": "k-1"}

    first = await client.post(ORDERS, json=body, headers=key)
    again = await client.post(ORDERS, json=body, headers=key)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert await count_rows(engine, orders) == 1
    assert await count_rows(engine, outbox) == 1
    assert wake.count == 1


async def test_replay_returns_current_status(client: AsyncClient, engine: AsyncEngine) -> None:
    body = {"userID": 1, "productID": 1}
    first = await client.post(ORDERS, json=body, headers={"Idempotency-Key": "k"})
    async with engine.begin() as conn:
        await conn.execute(update(orders).values(status=OrderStatus.ORDER_COMPLETED.value))

    again = await client.post(ORDERS, json=body, headers={"Idempotency-Key": "k"})

    assert again.json()["orderID"] == first.json()["orderID"]
    assert again.json()["status"] == "ORDER_COMPLETED"


async def test_different_keys_make_different_orders(client: AsyncClient) -> None:
    body = {"userID": 1, "productID": 1}
    first = await client.post(ORDERS, json=body, headers={"Idempotency-Key": "a"})
    second = await client.post(ORDERS, json=body, headers={"Idempotency-Key": "b"})

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["orderID"] != second.json()["orderID"]


async def test_key_reused_with_other_body_is_refused(
    client: AsyncClient, engine: AsyncEngine
) -> None:
    key = {"Idempotency-Key": "k-2"}
    await client.post(ORDERS, json={"userID": 1, "productID": 1}, headers=key)

    response = await client.post(ORDERS, json={"userID": 1, "productID": 2}, headers=key)

    assert_names_field(response, "Idempotency-Key")
    assert "different order" in response.json()["detail"]
    assert await count_rows(engine, orders) == 1


@pytest.mark.parametrize("key", ["", "x" * 256])
async def test_bad_idempotency_key_is_422(client: AsyncClient, key: str) -> None:
    response = await client.post(
        ORDERS, json={"userID": 1, "productID": 1}, headers={"Idempotency-Key": key}
    )

    assert_names_field(response, "Idempotency-Key")


async def test_concurrent_posts_with_one_key_make_one_order(
    client: AsyncClient, engine: AsyncEngine
) -> None:
    body = {"userID": 2, "productID": 3, "quantity": 1}
    responses = await asyncio.gather(
        *(client.post(ORDERS, json=body, headers={"Idempotency-Key": "race"}) for _ in range(8))
    )

    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    assert len({r.json()["orderID"] for r in responses}) == 1
    assert await count_rows(engine, orders) == 1
    assert await count_rows(engine, outbox) == 1


@pytest.fixture
def rival_commits_first(db_path: Path, engine: AsyncEngine) -> Iterator[dict[str, Any]]:
    """Just before the next insert into orders, another writer commits an order with the
    same key: the race that only the unique constraint can settle."""
    rival = {
        "id": str(uuid4()),
        "user_id": 2,
        "product_id": 3,
        "quantity": 1,
        "amount": Decimal("50.00"),
        "status": OrderStatus.ORDER_CREATED.value,
        "idempotency_key": "race",
        "created_at": utc_now(),
        "updated_at": utc_now(),
    }
    other_writer = create_engine(f"sqlite:///{db_path}")
    fired = False

    def before_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        nonlocal fired
        if not fired and statement.startswith("INSERT INTO orders"):
            fired = True
            with other_writer.begin() as conn:
                conn.execute(insert(orders).values(rival))

    event.listen(engine.sync_engine, "before_cursor_execute", before_execute)
    yield rival
    event.remove(engine.sync_engine, "before_cursor_execute", before_execute)
    other_writer.dispose()


async def test_race_loser_returns_winners_order(
    client: AsyncClient,
    engine: AsyncEngine,
    wake: WakeCounter,
    rival_commits_first: dict[str, Any],
) -> None:
    body = {"userID": 2, "productID": 3, "quantity": 1}
    response = await client.post(ORDERS, json=body, headers={"Idempotency-Key": "race"})

    assert response.status_code == 200, response.text
    assert response.json()["orderID"] == rival_commits_first["id"]
    assert await count_rows(engine, orders) == 1
    assert await count_rows(engine, outbox) == 0  # the loser wrote nothing
    assert wake.count == 0


async def test_race_loser_with_other_body_is_refused(
    client: AsyncClient, engine: AsyncEngine, rival_commits_first: dict[str, Any]
) -> None:
    body = {"userID": 2, "productID": 1, "quantity": 1}
    response = await client.post(ORDERS, json=body, headers={"Idempotency-Key": "race"})

    assert_names_field(response, "Idempotency-Key")
    assert await count_rows(engine, orders) == 1


# --- reading orders -----------------------------------------------------------------


async def place(client: AsyncClient, user: int, product: int, quantity: int = 1) -> str:
    response = await client.post(
        ORDERS, json={"userID": user, "productID": product, "quantity": quantity}
    )
    assert response.status_code == 201, response.text
    order_id: str = response.json()["orderID"]
    return order_id


async def test_get_order(client: AsyncClient) -> None:
    order_id = await place(client, 1, 2)

    response = await client.get(f"{ORDERS}/{order_id}")

    assert response.status_code == 200
    assert response.json()["orderID"] == order_id
    assert response.json()["amount"] == 30.0


async def test_get_unknown_order_is_404(client: AsyncClient) -> None:
    order_id = uuid4()
    response = await client.get(f"{ORDERS}/{order_id}")

    assert response.status_code == 404
    assert response.json()["detail"] == f"order {order_id} not found"


async def test_get_malformed_id_is_422(client: AsyncClient) -> None:
    response = await client.get(f"{ORDERS}/not-a-uuid")

    assert_names_field(response, "orderID")


async def test_list_newest_first_with_total(client: AsyncClient) -> None:
    placed = [await place(client, 1, 1) for _ in range(3)]

    response = await client.get(ORDERS)

    assert response.status_code == 200
    page = response.json()
    assert [o["orderID"] for o in page["items"]] == placed[::-1]
    assert (page["total"], page["limit"], page["offset"]) == (3, 50, 0)


async def test_list_paginates(client: AsyncClient) -> None:
    placed = [await place(client, 1, 1) for _ in range(5)]

    first = (await client.get(ORDERS, params={"limit": 2})).json()
    second = (await client.get(ORDERS, params={"limit": 2, "offset": 2})).json()
    last = (await client.get(ORDERS, params={"limit": 2, "offset": 4})).json()

    seen = [o["orderID"] for page in (first, second, last) for o in page["items"]]
    assert seen == placed[::-1]
    assert {page["total"] for page in (first, second, last)} == {5}


async def test_list_filters_by_user_and_status(client: AsyncClient, engine: AsyncEngine) -> None:
    mine = await place(client, 1, 1)
    done = await place(client, 1, 2)
    await place(client, 2, 1)
    async with engine.begin() as conn:
        await conn.execute(
            update(orders).where(orders.c.id == done).values(status="ORDER_COMPLETED")
        )

    by_user = (await client.get(ORDERS, params={"userID": 1})).json()
    created = (await client.get(ORDERS, params={"userID": 1, "status": "ORDER_CREATED"})).json()
    completed = (await client.get(ORDERS, params={"status": "ORDER_COMPLETED"})).json()

    assert {o["orderID"] for o in by_user["items"]} == {mine, done}
    assert [o["orderID"] for o in created["items"]] == [mine]
    assert [o["orderID"] for o in completed["items"]] == [done]
    assert (by_user["total"], created["total"], completed["total"]) == (2, 1, 1)


async def test_list_bad_status_names_allowed_values(client: AsyncClient) -> None:
    response = await client.get(ORDERS, params={"status": "DONE"})

    assert_names_field(response, "status")
    for status in OrderStatus:
        assert status.value in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"offset": -1}, "offset"),
        ({"userID": "me"}, "userID"),
        ({"userID": str(10**30)}, "userID"),
    ],
)
async def test_list_bad_query_is_422(
    client: AsyncClient, params: dict[str, Any], field: str
) -> None:
    assert_names_field(await client.get(ORDERS, params=params), field)


async def test_products_lists_catalog(client: AsyncClient) -> None:
    response = await client.get("/api/v1/products")

    assert response.status_code == 200
    assert response.json()["items"] == [
        {"productID": 1, "name": "Product 1", "price": 20.0},
        {"productID": 2, "name": "Product 2", "price": 30.0},
        {"productID": 3, "name": "Product 3", "price": 50.0},
    ]


# --- health -------------------------------------------------------------------------


async def test_healthz(client: AsyncClient) -> None:
    response = await client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_when_database_answers(client: AsyncClient) -> None:
    response = await client.get("/readyz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_when_database_is_gone(tmp_path: Path) -> None:
    # A directory where the database file should be: SQLite cannot open it.
    engine = make_engine(sqlite_url(tmp_path))
    app = create_app(order_units(engine, WakeCounter()), Settings(), verifier=verifier())
    async with operator_client(app) as client:
        response = await client.get("/readyz")
    await engine.dispose()

    assert response.status_code == 503
    assert response.json()["status"] == "unready"
    assert "database" in response.json()["reason"]


async def test_post_when_database_is_gone_is_503(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path))
    app = create_app(order_units(engine, WakeCounter()), Settings(), verifier=verifier())
    async with operator_client(app) as client:
        response = await client.post(ORDERS, json={"userID": 1, "productID": 1})
    await engine.dispose()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "retry" in response.json()["detail"]


async def test_openapi_docs(client: AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    assert schema["info"]["title"] == "ordersaga order service"
    assert {"/api/v1/orders", "/api/v1/orders/{orderID}", "/api/v1/products"} <= set(
        schema["paths"]
    )
    assert (await client.get("/docs")).status_code == 200


async def test_unknown_route_is_readable_404(client: AsyncClient) -> None:
    response = await client.get("/api/v1/nothing")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found", "errors": []}


class RefusingEngine:
    """An engine whose every transaction fails with ``error`` before it starts."""

    def __init__(self, engine: AsyncEngine, error: Exception) -> None:
        self._engine = engine
        self._error = error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def begin(self) -> Any:
        raise self._error

    def connect(self) -> Any:
        raise self._error


@pytest.mark.parametrize("fault", sorted(SURROUNDINGS))
async def test_every_fault_of_the_database_is_a_503_with_retry_after(
    tmp_path: Path, fault: str
) -> None:
    engine = make_engine(sqlite_url(tmp_path / "orders.sqlite3"))
    refusing: Any = RefusingEngine(engine, SURROUNDINGS[fault]())
    app = create_app(order_units(refusing, WakeCounter()), Settings(), verifier=verifier())
    async with operator_client(app) as client:
        response = await client.post(ORDERS, json={"userID": 1, "productID": 1})
    await engine.dispose()

    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"


async def test_a_bug_is_a_500_that_says_the_request_may_be_retried(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path / "orders.sqlite3"))
    refusing: Any = RefusingEngine(engine, UNEXPECTED["a bug"]())
    app = create_app(order_units(refusing, WakeCounter()), Settings(), verifier=verifier())
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with operator_client(transport=transport) as client:
        response = await client.post(ORDERS, json={"userID": 1, "productID": 1})
    await engine.dispose()

    assert response.status_code == 500
    assert "retried" in response.json()["detail"]

"""With ``ORDERSAGA_AUTH=disabled`` (the explicit opt-out) the API takes requests
without tokens, everyone as an operator, and every start says so in a warning. These
tests are about authentication being off."""

import logging
from collections.abc import AsyncIterator

import pytest
from httpx import ASGITransport, AsyncClient

from ordersaga.auth import setup as auth_setup
from ordersaga.config import Settings
from ordersaga.db.engine import make_engine
from ordersaga.services.order.api import create_app
from tests.support import order_units

ORDERS = "/api/v1/orders"


@pytest.fixture
async def client(db_url: str) -> AsyncIterator[AsyncClient]:
    engine = make_engine(db_url)
    settings = Settings(auth="disabled", api_rate_limit=0)
    app = create_app(order_units(engine), settings, verifier=auth_setup.verifier(settings))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        yield client
    await engine.dispose()


def test_every_start_without_authentication_logs_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        first = auth_setup.verifier(Settings(auth="disabled"))
        second = auth_setup.verifier(Settings(auth="disabled"))

    assert first is None and second is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [auth_setup.DISABLED_WARNING] * 2
    assert "ORDERSAGA_AUTH=disabled" in auth_setup.DISABLED_WARNING


async def test_without_authentication_anyone_places_and_reads_every_order(
    client: AsyncClient,
) -> None:
    placed = [
        await client.post(ORDERS, json={"userID": user, "productID": 1}) for user in (1, 2)
    ]
    listed = await client.get(ORDERS)
    one = await client.get(f"{ORDERS}/{placed[0].json()['orderID']}")

    assert [p.status_code for p in placed] == [201, 201]
    assert listed.json()["total"] == 2
    assert one.status_code == 200


async def test_without_authentication_the_user_must_still_be_named(client: AsyncClient) -> None:
    response = await client.post(ORDERS, json={"productID": 1})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "userID"


def test_the_setting_takes_enabled_or_disabled_only() -> None:
    with pytest.raises(ValueError, match="'enabled' or 'disabled'"):
        Settings(auth="off")  # type: ignore[arg-type]

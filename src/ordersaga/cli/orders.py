"""``ordersaga place-order`` and ``ordersaga orders``: the order API, from the terminal."""

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console

from ordersaga.auth import setup as auth_setup
from ordersaga.cli.errors import FAILED, ServerUnreachable, api_unreachable, fail
from ordersaga.cli.json_output import JsonFlag, echo_json
from ordersaga.cli.tables import orders_listing
from ordersaga.config import Settings
from ordersaga.tools.client import ApiError, FixedToken, OrderClient, Tokens

T = TypeVar("T")

console = Console()

DEFAULT_API = "http://127.0.0.1:8091"
ApiUrl = Annotated[str, typer.Option("--api-url", help="Base URL of the order service.")]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="ORDERSAGA_TOKEN",
        help="A bearer token to send (an identity provider's); by default one is minted "
        "with the local key in --data-dir.",
        show_default=False,
    ),
]
KeyDir = Annotated[
    Path,
    typer.Option("--data-dir", help="Where the local signing key is (auth/signing-key.pem)."),
]


def _tokens(token: str | None, data_dir: Path) -> Tokens | None:
    """The token given, else tokens minted with the local key; none when authentication
    is disabled."""
    if token:
        return FixedToken(token)
    settings = Settings()
    if settings.auth == "disabled":
        return None
    return auth_setup.local_tokens(settings, data_dir)


def place_order_command(
    user: Annotated[int, typer.Option("--user", help="The customer's userID.")],
    product: Annotated[int, typer.Option("--product", help="The productID.")],
    quantity: Annotated[int, typer.Option("--quantity", help="How many.")] = 1,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the saga has finished.")] = False,
    idempotency_key: Annotated[str | None, typer.Option(help="Idempotency-Key header.")] = None,
    api_url: ApiUrl = DEFAULT_API,
    token: Token = None,
    data_dir: KeyDir = auth_setup.DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Place an order through the HTTP API, as the customer (a token for --user is
    minted with the local key unless --token is given)."""

    async def run() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=api_url, timeout=10) as http:
            client = OrderClient(http, _tokens(token, data_dir))
            order = await client.place(user, product, quantity, idempotency_key)
            return await client.wait(str(order["orderID"])) if wait else order

    order = _call_api(run, api_url)
    if as_json:
        echo_json(order)
        return
    out = Console()
    out.print(orders_listing([order], out.width, title="Order"))


def orders_command(
    user: Annotated[int | None, typer.Option("--user", help="Only this userID.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 50,
    offset: Annotated[int, typer.Option(help="How many to skip.")] = 0,
    api_url: ApiUrl = DEFAULT_API,
    token: Token = None,
    data_dir: KeyDir = auth_setup.DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """List orders, newest first (as an operator, with a token minted with the local
    key, unless --token is given)."""

    async def run() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=api_url, timeout=10) as http:
            return await OrderClient(http, _tokens(token, data_dir)).list(
                userID=user, status=status, limit=limit, offset=offset
            )

    page = _call_api(run, api_url)
    if as_json:
        echo_json(page)
        return
    items = page["items"]
    out = Console()
    out.print(orders_listing(items, out.width, title=f"Orders ({len(items)} of {page['total']})"))


def _call_api(run: Callable[[], Coroutine[Any, Any, T]], api_url: str) -> T:
    try:
        return asyncio.run(run())
    except ApiError as error:
        hint = ""
        if error.status == 401:
            hint = (
                " (tokens are minted with the key in --data-dir, which must be the running "
                "system's; or pass an identity provider's with --token)"
            )
        fail(f"the API refused: {error}{hint}", FAILED)
    except httpx.TransportError as error:
        raise ServerUnreachable(api_unreachable(api_url, error, Settings())) from error

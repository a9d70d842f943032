"""A small client of the order service's HTTP API, for the command line and the demo."""

import asyncio
from typing import Any, Protocol

import httpx

TERMINAL = ("ORDER_COMPLETED", "ORDER_CANCELLED")
MAX_THROTTLED_RETRIES = 30
"""How often a placement answered 429 is tried again, after the Retry-After it names."""


class ApiError(Exception):
    """The API refused a request; the message is the API's own explanation."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status


class Tokens(Protocol):
    """Where the client's bearer tokens come from (:class:`ordersaga.auth.tokens.LocalTokens`)."""

    def for_user(self, user: int) -> str:
        """A customer's token, to place that user's orders."""

    def operator(self) -> str:
        """An operator's token, to read every order."""


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.is_error:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise ApiError(response.status_code, str(detail))
    body: dict[str, Any] = response.json()
    return body


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class OrderClient:
    """Places orders with each user's own token and reads them with an operator's;
    without ``tokens`` it sends none (an API with authentication disabled)."""

    def __init__(self, http: httpx.AsyncClient, tokens: Tokens | None = None) -> None:
        self._http = http
        self._tokens = tokens

    def _as_user(self, user: int) -> dict[str, str]:
        return _bearer(self._tokens.for_user(user)) if self._tokens else {}

    def _as_operator(self) -> dict[str, str]:
        return _bearer(self._tokens.operator()) if self._tokens else {}

    async def place(
        self, user: int, product: int, quantity: int = 1, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Place an order as ``user``; a 429 is waited out and tried again (nothing was
        placed), a few times."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = {"userID": user, "productID": product, "quantity": quantity}
        for _ in range(MAX_THROTTLED_RETRIES):
            headers.update(self._as_user(user))
            response = await self._http.post("/api/v1/orders", json=body, headers=headers)
            if response.status_code != 429:
                break
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
        return _check(response)

    async def get(self, order_id: str) -> dict[str, Any]:
        return _check(
            await self._http.get(f"/api/v1/orders/{order_id}", headers=self._as_operator())
        )

    async def list(self, **filters: Any) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v is not None}
        return _check(
            await self._http.get("/api/v1/orders", params=params, headers=self._as_operator())
        )

    async def wait(
        self, order_id: str, timeout: float = 30.0, interval: float = 0.02
    ) -> dict[str, Any]:
        """Poll the order until it is COMPLETED or CANCELLED, or ``timeout`` runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            order = await self.get(order_id)
            if order["status"] in TERMINAL or loop.time() > deadline:
                return order
            await asyncio.sleep(interval)


class FixedToken:
    """One token for every request (one an identity provider issued)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def for_user(self, user: int) -> str:
        return self._token

    def operator(self) -> str:
        return self._token

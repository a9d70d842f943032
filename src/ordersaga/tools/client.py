"""A small client of the order service's HTTP API, for the command line and the demo."""

import asyncio
from typing import Any

import httpx

TERMINAL = ("ORDER_COMPLETED", "ORDER_CANCELLED")


class ApiError(Exception):
    """The API refused a request; the message is the API's own explanation."""


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.is_error:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise ApiError(f"{response.status_code}: {detail}")
    body: dict[str, Any] = response.json()
    return body


class OrderClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def place(
        self, user: int, product: int, quantity: int = 1, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = {"userID": user, "productID": product, "quantity": quantity}
        return _check(await self._http.post("/api/v1/orders", json=body, headers=headers))

    async def get(self, order_id: str) -> dict[str, Any]:
        return _check(await self._http.get(f"/api/v1/orders/{order_id}"))

    async def list(self, **filters: Any) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v is not None}
        return _check(await self._http.get("/api/v1/orders", params=params))

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

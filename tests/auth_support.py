"""Tokens for the tests.

Every test process verifies tokens against one local key (tests/conftest.py sets
``ORDERSAGA_AUTH_KEY_FILE``); :func:`verifier` accepts what it signs, and the headers
here carry its tokens. A test's API client sends an operator's token unless it tests
what a customer may do.
"""

import functools

import httpx
from fastapi import FastAPI

from ordersaga.auth import setup as auth_setup
from ordersaga.auth.tokens import LocalTokens
from ordersaga.auth.verify import TokenVerifier
from ordersaga.config import Settings


@functools.cache
def tokens() -> LocalTokens:
    """Tokens signed with the tests' local key, minted once per subject."""
    return auth_setup.local_tokens(Settings())


def verifier(settings: Settings | None = None) -> TokenVerifier:
    """A verifier of the tests' tokens (one per app: it belongs to one event loop)."""
    built = auth_setup.verifier(settings or Settings())
    assert built is not None, "authentication is enabled in the tests"
    return built


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def operator_headers() -> dict[str, str]:
    """Headers of an operator's requests: reads every order, places any user's."""
    return bearer(tokens().operator())


def user_headers(user: int) -> dict[str, str]:
    """Headers of customer ``user``'s requests."""
    return bearer(tokens().for_user(user))


def operator_client(
    app: FastAPI | None = None, *, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """A client of ``app`` (or over ``transport``) sending an operator's token."""
    return httpx.AsyncClient(
        transport=transport or httpx.ASGITransport(app=app),
        base_url="http://test",
        headers=operator_headers(),
    )

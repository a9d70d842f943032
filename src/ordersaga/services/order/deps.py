"""What route functions may ask for: the engine, the settings, the units of work, and
who is calling.

They live on ``app.state`` (set once by :func:`ordersaga.services.order.api.create_app`),
never in module globals, so two apps in one process never share an engine. The
providers are coroutines although they never wait: FastAPI runs a plain function
dependency on a worker thread, a hop per dependency per request.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.auth.jwks import KeyUnavailable
from ordersaga.auth.principal import UNAUTHENTICATED_OPERATOR, Principal
from ordersaga.auth.verify import InvalidToken, TokenVerifier
from ordersaga.config import Settings
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.services.order.errors import KeysUnavailable, TooManyRequests, Unauthorized
from ordersaga.services.order.rate_limit import RateLimiter

MISSING_TOKEN = (
    "this API needs a bearer token: send Authorization: Bearer <token> "
    "(`ordersaga token --user N` mints one)"
)


@dataclass(frozen=True, slots=True)
class OrderServiceContext:
    transactions: Transactions
    settings: Settings
    verifier: TokenVerifier | None
    """``None`` when authentication is disabled."""
    limiter: RateLimiter


async def get_context(request: Request) -> OrderServiceContext:
    context = request.app.state.order_service
    if not isinstance(context, OrderServiceContext):
        raise RuntimeError("the app was not built by create_app")
    return context


ContextDep = Annotated[OrderServiceContext, Depends(get_context)]


async def get_engine(context: ContextDep) -> AsyncEngine:
    return context.transactions.engine


async def get_settings(context: ContextDep) -> Settings:
    return context.settings


async def get_transactions(context: ContextDep) -> Transactions:
    return context.transactions


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
TransactionsDep = Annotated[Transactions, Depends(get_transactions)]

bearer = HTTPBearer(
    auto_error=False,
    description="A JWT from `ordersaga token --user N` or the identity provider; "
    "`sub` is the customer's user id, `roles: [operator]` reads every order.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def get_principal(context: ContextDep, credentials: Credentials) -> Principal:
    """Who calls: the verified token's subject and roles (401 without a valid token);
    everyone is an operator when authentication is disabled."""
    if context.verifier is None:
        return UNAUTHENTICATED_OPERATOR
    if credentials is None:
        raise Unauthorized(MISSING_TOKEN, invalid=False)
    try:
        return await context.verifier.verify(credentials.credentials)
    except InvalidToken as error:
        raise Unauthorized(str(error), invalid=True) from error
    except KeyUnavailable as error:
        raise KeysUnavailable() from error


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def rate_limited(request: Request, context: ContextDep, principal: PrincipalDep) -> None:
    """429 for a client over its rate of order placement; a client is the token's
    subject, or its address when authentication is disabled."""
    client = principal.subject
    if context.verifier is None and request.client is not None:
        client = request.client.host
    wait = context.limiter.take(client)
    if wait:
        raise TooManyRequests(wait)

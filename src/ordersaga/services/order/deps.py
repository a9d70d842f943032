"""What route functions may ask for: the engine, the settings and the relay's wake-up.

They live on ``app.state`` (set once by :func:`ordersaga.services.order.api.create_app`),
never in module globals, so two apps in one process never share an engine. The
providers are coroutines although they never wait: FastAPI runs a plain function
dependency on a worker thread, a hop per dependency per request.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings


@dataclass(frozen=True, slots=True)
class OrderServiceContext:
    engine: AsyncEngine
    settings: Settings
    wake_relay: Callable[[], None]


async def get_context(request: Request) -> OrderServiceContext:
    context = request.app.state.order_service
    if not isinstance(context, OrderServiceContext):
        raise RuntimeError("the app was not built by create_app")
    return context


ContextDep = Annotated[OrderServiceContext, Depends(get_context)]


async def get_engine(context: ContextDep) -> AsyncEngine:
    return context.engine


async def get_settings(context: ContextDep) -> Settings:
    return context.settings


async def get_wake_relay(context: ContextDep) -> Callable[[], None]:
    return context.wake_relay


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
WakeRelayDep = Annotated[Callable[[], None], Depends(get_wake_relay)]

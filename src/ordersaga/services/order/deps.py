"""What route functions may ask for: the engine, the settings and the units of work.

They live on ``app.state`` (set once by :func:`ordersaga.services.order.api.create_app`),
never in module globals, so two apps in one process never share an engine. The
providers are coroutines although they never wait: FastAPI runs a plain function
dependency on a worker thread, a hop per dependency per request.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings
from ordersaga.messaging.unit_of_work import Transactions


@dataclass(frozen=True, slots=True)
class OrderServiceContext:
    transactions: Transactions
    settings: Settings


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

"""The data a benchmark places orders against: many products and users, with stock and
balances large enough that every order can complete.

The sample data (three products, three users with small balances) would cancel most
orders within seconds. The bench rows come on top of it, with ids of their own, written
with SQLAlchemy Core into the services' databases after their seed; the seeds never
overwrite rows, so the order matters only for the embedded system, whose services
seed on start-up: there the bench writes schema, seed and bench rows before it starts.
"""

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings
from ordersaga.db.engine import create_schema
from ordersaga.runtime.embedded import embedded_engines
from ordersaga.runtime.service import service_spec
from ordersaga.services.base import SERVICE_NAMES
from ordersaga.services.order.tables import products
from ordersaga.services.payment.tables import balances
from ordersaga.services.stock.tables import stock

BENCH_PRODUCTS = tuple(range(1001, 1101))
"""100 products: few enough that the catalog stays small, enough that orders for one
product rarely wait on each other's row lock."""
BENCH_USERS = tuple(range(1001, 3001))
BENCH_PRICE = Decimal("1.00")
BENCH_STOCK = 1_000_000_000  # fits a 32-bit INTEGER column
BENCH_BALANCE = Decimal("1000000000.00")  # fits NUMERIC(12,2)


async def add_bench_data(engines: Mapping[str, AsyncEngine]) -> None:
    """Add the bench products (catalog and stock) and users (balances)."""
    async with engines["order"].begin() as conn:
        await conn.execute(
            insert(products),
            [{"id": p, "name": f"Bench product {p}", "price": BENCH_PRICE} for p in BENCH_PRODUCTS],
        )
    async with engines["stock"].begin() as conn:
        await conn.execute(
            insert(stock),
            [
                {"product_id": p, "quantity": BENCH_STOCK, "initial_quantity": BENCH_STOCK}
                for p in BENCH_PRODUCTS
            ],
        )
    async with engines["payment"].begin() as conn:
        await conn.execute(
            insert(balances),
            [
                {"user_id": u, "balance": BENCH_BALANCE, "initial_balance": BENCH_BALANCE}
                for u in BENCH_USERS
            ],
        )


async def prepare_embedded_data(data_dir: Path, settings: Settings) -> None:
    """Schema, the services' seed and the bench rows in the embedded system's SQLite
    files, so the system finds them in place when it starts (its seed then adds nothing)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    engines = embedded_engines(data_dir)
    try:
        for name in SERVICE_NAMES:
            spec = service_spec(name, settings)
            await create_schema(engines[name], spec.metadata)
            async with engines[name].begin() as conn:
                await spec.seed(conn)
        await add_bench_data(engines)
    finally:
        for engine in engines.values():
            await engine.dispose()

"""The data a benchmark places orders against: many products and users, with stock and
balances large enough that every order can complete.

The sample data (three products, three users with small balances) would cancel most
orders within seconds. The bench rows come on top of it, with ids of their own, written
with SQLAlchemy Core into the services' databases after their seed; the seeds never
overwrite rows, so the order matters only for the embedded system, whose services
seed on start-up: there the bench writes schema, seed and bench rows before it starts.
"""

import random
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings
from ordersaga.db.engine import create_schema
from ordersaga.runtime.embedded import embedded_engines
from ordersaga.services.order.tables import products
from ordersaga.services.payment.tables import balances
from ordersaga.services.registry import SERVICE_NAMES, service_spec
from ordersaga.services.stock.tables import stock


@dataclass(frozen=True)
class Dataset:
    """Products (price and stock) and users (balance) added on top of the sample data."""

    products: Mapping[int, tuple[Decimal, int]]
    balances: Mapping[int, Decimal]


BENCH_PRODUCTS = tuple(range(1001, 1101))
"""100 products: few enough that the catalog stays small, enough that orders for one
product rarely wait on each other's row lock."""
BENCH_USERS = tuple(range(1001, 3001))
BENCH_PRICE = Decimal("1.00")
BENCH_STOCK = 1_000_000_000  # fits a 32-bit INTEGER column
BENCH_BALANCE = Decimal("1000000000.00")  # fits NUMERIC(12,2)

BENCH = Dataset(
    products={p: (BENCH_PRICE, BENCH_STOCK) for p in BENCH_PRODUCTS},
    balances={u: BENCH_BALANCE for u in BENCH_USERS},
)
"""Every order can complete."""

CHAOS_PLENTIFUL = tuple(range(3001, 3021))
CHAOS_SOLD_OUT = 3099
CHAOS_RICH = tuple(range(3001, 3201))
CHAOS_BROKE = tuple(range(3901, 3921))

CHAOS = Dataset(
    products={
        **{p: (BENCH_PRICE, BENCH_STOCK) for p in CHAOS_PLENTIFUL},
        CHAOS_SOLD_OUT: (BENCH_PRICE, 0),
    },
    balances={
        **{u: BENCH_BALANCE for u in CHAOS_RICH},
        **{u: Decimal("0.00") for u in CHAOS_BROKE},
    },
)
"""For a chaos run: most orders can complete, one product is always sold out and some
users can never pay, so refusals at the stock step and at the payment step (with its
compensation) happen at a steady share for the whole run, not only once stock runs out."""


def chaos_order(rng: random.Random) -> dict[str, int]:
    """An order body drawn from :data:`CHAOS`: 80 % can complete, 10 % meet the sold-out
    product, 10 % a user who cannot pay."""
    draw = rng.random()
    product = CHAOS_SOLD_OUT if draw < 0.1 else rng.choice(CHAOS_PLENTIFUL)
    user = rng.choice(CHAOS_BROKE) if 0.1 <= draw < 0.2 else rng.choice(CHAOS_RICH)
    return {"userID": user, "productID": product, "quantity": rng.randint(1, 2)}


async def add_data(engines: Mapping[str, AsyncEngine], data: Dataset) -> None:
    """Add ``data``'s products (catalog and stock) and users (balances) that are not there
    yet; rows already present are left as they are."""
    await _add_missing(
        engines["order"],
        products,
        [
            {"id": p, "name": f"Product {p}", "price": price}
            for p, (price, _) in data.products.items()
        ],
    )
    await _add_missing(
        engines["stock"],
        stock,
        [
            {"product_id": p, "quantity": units, "initial_quantity": units}
            for p, (_, units) in data.products.items()
        ],
    )
    await _add_missing(
        engines["payment"],
        balances,
        [
            {"user_id": u, "balance": money, "initial_balance": money}
            for u, money in data.balances.items()
        ],
    )


async def add_bench_data(engines: Mapping[str, AsyncEngine]) -> None:
    """Add the bench products (catalog and stock) and users (balances)."""
    await add_data(engines, BENCH)


async def _add_missing(engine: AsyncEngine, table: Table, rows: list[dict[str, Any]]) -> None:
    key = next(iter(table.primary_key.columns))
    async with engine.begin() as conn:
        present = set((await conn.execute(select(key))).scalars())
        missing = [row for row in rows if row[key.name] not in present]
        if missing:
            await conn.execute(insert(table), missing)


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

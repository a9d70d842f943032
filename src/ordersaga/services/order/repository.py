"""Reading and writing the order service's tables, on a connection the caller owns."""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Row, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.contracts.statuses import OrderStatus
from ordersaga.services.order.model import Order, Product
from ordersaga.services.order.tables import orders, products

# Built once and run with bound parameters: building a statement costs more than running it.
_INSERT_ORDER = insert(orders)
_BY_KEYS = select(orders).where(
    orders.c.idempotency_key.in_(bindparam("wanted_keys", expanding=True))
)
_LOCK_STATUSES = (
    select(orders.c.id, orders.c.status)
    .where(orders.c.id.in_(bindparam("wanted_orders", expanding=True)))
    .order_by(orders.c.id)
    .with_for_update()
)
_FINISH = (
    update(orders)
    .where(
        orders.c.id.in_(bindparam("wanted_orders", expanding=True)),
        orders.c.status == OrderStatus.ORDER_CREATED.value,
    )
    .values(
        status=bindparam("new_status"),
        reason=bindparam("new_reason"),
        updated_at=bindparam("now", type_=orders.c.updated_at.type),
    )
)


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """Which orders a listing returns; ``None`` means any."""

    user_id: int | None = None
    status: OrderStatus | None = None


def order_from_row(row: Row[Any]) -> Order:
    """An ``orders`` row as an :class:`Order`."""
    return Order(
        id=UUID(row.id),
        user_id=row.user_id,
        product_id=row.product_id,
        quantity=row.quantity,
        amount=row.amount,
        status=OrderStatus(row.status),
        reason=row.reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def list_products(conn: AsyncConnection) -> list[Product]:
    """The whole catalog, by product id."""
    rows = await conn.execute(select(products).order_by(products.c.id))
    return [Product(id=r.id, name=r.name, price=r.price) for r in rows]


async def insert_orders(
    conn: AsyncConnection, orders_and_keys: Sequence[tuple[Order, str | None]]
) -> None:
    """Insert the orders, each with its idempotency key, in one statement; a key used
    before fails on the unique constraint."""
    if not orders_and_keys:
        return
    await conn.execute(
        _INSERT_ORDER,
        [
            {
                "id": str(order.id),
                "user_id": order.user_id,
                "product_id": order.product_id,
                "quantity": order.quantity,
                "amount": order.amount,
                "status": order.status.value,
                "reason": order.reason,
                "idempotency_key": key,
                "created_at": order.created_at,
                "updated_at": order.updated_at,
            }
            for order, key in orders_and_keys
        ],
    )


async def get_order(conn: AsyncConnection, order_id: UUID) -> Order | None:
    row = (await conn.execute(select(orders).where(orders.c.id == str(order_id)))).first()
    return order_from_row(row) if row else None


async def orders_by_idempotency_keys(
    conn: AsyncConnection, keys: Sequence[str]
) -> dict[str, Order]:
    """The orders made with ``keys``, by key; a key no order was made with is absent."""
    if not keys:
        return {}
    rows = await conn.execute(_BY_KEYS, {"wanted_keys": list(keys)})
    return {row.idempotency_key: order_from_row(row) for row in rows}


def _conditions(where: OrderFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.user_id is not None:
        conditions.append(orders.c.user_id == where.user_id)
    if where.status is not None:
        conditions.append(orders.c.status == where.status.value)
    return conditions


async def list_orders(
    conn: AsyncConnection, where: OrderFilter, *, limit: int, offset: int
) -> tuple[list[Order], int]:
    """One page of the orders matching ``where``, newest first, and how many match in all."""
    conditions = _conditions(where)
    total = await conn.scalar(select(func.count()).select_from(orders).where(*conditions))
    rows = await conn.execute(
        select(orders)
        .where(*conditions)
        # The id breaks ties between orders created in the same microsecond.
        .order_by(orders.c.created_at.desc(), orders.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [order_from_row(r) for r in rows], int(total or 0)


async def lock_statuses(conn: AsyncConnection, order_ids: Sequence[str]) -> dict[str, OrderStatus]:
    """The status of each of ``order_ids`` that exists, its row locked until the
    transaction ends (where the database locks rows), in the order of their ids."""
    if not order_ids:
        return {}
    rows = await conn.execute(_LOCK_STATUSES, {"wanted_orders": list(order_ids)})
    return {row.id: OrderStatus(row.status) for row in rows}


async def finish_orders(
    conn: AsyncConnection,
    finishing: Mapping[UUID, tuple[OrderStatus, str | None]],
    now: datetime,
) -> int:
    """Move ORDER_CREATED orders to their final status and reason; how many moved.

    One conditional update per final status and reason, so a final status is never
    overwritten, however transactions interleave: whichever update commits first wins
    and the other changes nothing.
    """
    by_outcome: dict[tuple[OrderStatus, str | None], list[str]] = defaultdict(list)
    for order_id, outcome in finishing.items():
        by_outcome[outcome].append(str(order_id))
    moved = 0
    for (status, reason), ids in by_outcome.items():
        result = await conn.execute(
            _FINISH,
            {"wanted_orders": ids, "new_status": status.value, "new_reason": reason, "now": now},
        )
        moved += result.rowcount
    return moved


async def order_status(conn: AsyncConnection, order_id: UUID) -> OrderStatus | None:
    """The current status of ``order_id``, or ``None`` for an unknown order."""
    status = await conn.scalar(select(orders.c.status).where(orders.c.id == str(order_id)))
    return OrderStatus(status) if status is not None else None

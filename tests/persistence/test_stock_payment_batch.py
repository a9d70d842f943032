"""Stock and payment commands handled a polled batch at once, on every backend.

A batch must have the effect of its commands handled one by one in record order: the
same answers, in the same order, and the same rows left behind.
"""

import random
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings
from ordersaga.contracts import headers as h
from ordersaga.contracts import topics
from ordersaga.contracts.codec import decode
from ordersaga.contracts.messages import WireMessage
from ordersaga.contracts.statuses import (
    PaymentCancelStatus,
    PaymentStatus,
    ReservationCancelStatus,
    StockStatus,
)
from ordersaga.messaging.batch import handle_batch
from ordersaga.messaging.envelope import envelope
from ordersaga.messaging.handler import Decoded
from ordersaga.messaging.port import Record
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.services.base import ServiceSpec
from ordersaga.services.payment import wiring as payment_wiring
from ordersaga.services.payment.tables import balances, payments
from ordersaga.services.stock import wiring as stock_wiring
from ordersaga.services.stock.tables import reservations, stock
from tests.persistence.conftest import Databases
from tests.persistence.support import cancel_payment, cancel_reservation, charge, reserve

Command = tuple[str, WireMessage]

STOCK = stock_wiring.spec(Settings())
PAYMENT = payment_wiring.spec(Settings())


def _decoded(offset: int, topic: str, message: WireMessage, message_id: str | None) -> Decoded:
    out = envelope(topic, message)
    headers = dict(out.headers)
    if message_id is not None:
        headers[h.MESSAGE_ID] = message_id
    record = Record(topic, 0, offset, out.key, out.value, headers)
    return Decoded(record, message, headers[h.MESSAGE_ID])


def _transactions(engine: AsyncEngine, service: ServiceSpec) -> Transactions:
    return Transactions(engine, service.outbox, service.inbox)


async def together(
    engine: AsyncEngine,
    service: ServiceSpec,
    commands: Sequence[Command],
    message_ids: Sequence[str | None] | None = None,
) -> list[Any]:
    """Handle ``commands`` as one polled batch, through the batch handler; the answers."""
    ids = message_ids or [None] * len(commands)
    items = [
        _decoded(i, t, m, mid) for i, ((t, m), mid) in enumerate(zip(commands, ids, strict=True))
    ]
    handlers = {s.topic: s.handle for s in service.subscriptions}
    outcome = await handle_batch(_transactions(engine, service), items, handlers)
    return [decode(m.topic, m.value) for m in outcome.sent]


async def apart(
    engine: AsyncEngine, service: ServiceSpec, commands: Sequence[Command]
) -> list[WireMessage]:
    """Handle ``commands`` one by one, each in its own transaction; the answers."""
    handlers = {s.topic: s.handle for s in service.subscriptions}
    answers: list[WireMessage] = []
    for i, (topic, message) in enumerate(commands):
        outcome = await handle_batch(
            _transactions(engine, service), [_decoded(i, topic, message, None)], handlers
        )
        answers += [decode(m.topic, m.value) for m in outcome.sent]
    return answers


async def rows(engine: AsyncEngine, service: ServiceSpec) -> list[tuple[Any, ...]]:
    """What the service's state tables hold, timestamps left out."""
    if service is STOCK:
        queries = [
            select(stock.c.product_id, stock.c.quantity).order_by(stock.c.product_id),
            select(
                reservations.c.order_id,
                reservations.c.product_id,
                reservations.c.quantity,
                reservations.c.status,
                reservations.c.reason,
            ).order_by(reservations.c.order_id),
        ]
    else:
        queries = [
            select(balances.c.user_id, balances.c.balance).order_by(balances.c.user_id),
            select(
                payments.c.order_id,
                payments.c.user_id,
                payments.c.amount,
                payments.c.status,
                payments.c.reason,
            ).order_by(payments.c.order_id),
        ]
    async with engine.connect() as conn:
        return [tuple(row) for query in queries for row in await conn.execute(query)]


def _res(order: UUID, product: int = 1, quantity: int = 2) -> Command:
    return topics.RESERVE_PRODUCT, reserve(product, quantity, order)


def _unres(order: UUID, product: int = 1, quantity: int = 2) -> Command:
    return topics.CANCEL_PRODUCT_RESERVATION, cancel_reservation(order, product, quantity)


def _pay(order: UUID, user: int = 1, amount: str = "20.00") -> Command:
    return topics.PROCESS_PAYMENT, charge(user, Decimal(amount), order)


def _unpay(order: UUID, user: int = 1, amount: str = "20.00") -> Command:
    return topics.CANCEL_PAYMENT, cancel_payment(order, user, Decimal(amount))


def _status(answers: Sequence[Any]) -> list[Any]:
    return [a.status for a in answers]


async def test_a_reserve_and_its_cancel_in_one_batch_give_the_stock_back(db: Databases) -> None:
    engine = await db.fresh("stock")
    order = uuid4()

    answers = await together(engine, STOCK, [_res(order), _unres(order), _res(order)])

    assert _status(answers) == [
        StockStatus.AVAILABLE,
        ReservationCancelStatus.RESERVATION_RELEASED,
        StockStatus.UNAVAILABLE,
    ]
    assert [a.quantity for a in answers] == [2, 2, 2]
    assert await rows(engine, STOCK) == [
        (1, 5),
        (2, 5),
        (3, 3),
        (str(order), 1, 2, "RELEASED", None),
    ]


async def test_a_cancel_before_its_reserve_in_one_batch_leaves_a_tombstone(
    db: Databases,
) -> None:
    engine = await db.fresh("stock")
    order = uuid4()

    answers = await together(engine, STOCK, [_unres(order), _res(order)])

    assert _status(answers) == [ReservationCancelStatus.NOTHING_RESERVED, StockStatus.UNAVAILABLE]
    assert answers[1].reason == "reservation was cancelled before it was made"
    assert (await rows(engine, STOCK))[:3] == [(1, 5), (2, 5), (3, 3)]


async def test_a_reserve_sent_twice_in_one_batch_deducts_once(db: Databases) -> None:
    engine = await db.fresh("stock")
    order = uuid4()
    command = _res(order)

    answers = await together(engine, STOCK, [command, command, command], ["a", "b", "a"])

    assert _status(answers) == [StockStatus.AVAILABLE, StockStatus.AVAILABLE]
    assert (await rows(engine, STOCK))[0] == (1, 3)


async def test_the_second_of_two_reserves_of_the_last_units_is_refused(db: Databases) -> None:
    engine = await db.fresh("stock")

    answers = await together(engine, STOCK, [_res(uuid4(), 3, 2), _res(uuid4(), 3, 2)])

    assert _status(answers) == [StockStatus.AVAILABLE, StockStatus.UNAVAILABLE]
    assert answers[1].reason == ("insufficient stock for product 3: 1 on hand, 2 requested")
    assert (await rows(engine, STOCK))[2] == (3, 1)


async def test_an_unknown_product_in_a_batch_is_refused_with_a_reason(db: Databases) -> None:
    engine = await db.fresh("stock")

    answers = await together(engine, STOCK, [_res(uuid4(), 99, 1), _res(uuid4(), 1, 1)])

    assert _status(answers) == [StockStatus.UNAVAILABLE, StockStatus.AVAILABLE]
    assert answers[0].reason == "unknown product 99"


async def test_a_payment_and_its_cancel_in_one_batch_refund(db: Databases) -> None:
    engine = await db.fresh("payment")
    order = uuid4()

    answers = await together(engine, PAYMENT, [_pay(order), _unpay(order), _unpay(order)])

    assert _status(answers) == [
        PaymentStatus.PAYMENT_APPROVED,
        PaymentCancelStatus.PAYMENT_REFUNDED,
        PaymentCancelStatus.NOTHING_CHARGED,
    ]
    assert (await rows(engine, PAYMENT))[0] == (1, Decimal("100.00"))
    assert (await rows(engine, PAYMENT))[3][3] == "REFUNDED"


async def test_a_cancel_before_its_payment_in_one_batch_refuses_it(db: Databases) -> None:
    engine = await db.fresh("payment")
    order = uuid4()

    answers = await together(engine, PAYMENT, [_unpay(order), _pay(order)])

    assert _status(answers) == [
        PaymentCancelStatus.NOTHING_CHARGED,
        PaymentStatus.PAYMENT_REJECTED,
    ]
    assert answers[1].reason == "payment was cancelled"
    assert (await rows(engine, PAYMENT))[0] == (1, Decimal("100.00"))


async def test_a_payment_sent_twice_in_one_batch_charges_once(db: Databases) -> None:
    engine = await db.fresh("payment")
    command = _pay(uuid4())

    answers = await together(engine, PAYMENT, [command, command])

    assert _status(answers) == [PaymentStatus.PAYMENT_APPROVED, PaymentStatus.PAYMENT_APPROVED]
    assert (await rows(engine, PAYMENT))[0] == (1, Decimal("80.00"))


async def test_the_second_payment_beyond_the_balance_and_an_unknown_user_are_rejected(
    db: Databases,
) -> None:
    engine = await db.fresh("payment")

    answers = await together(
        engine,
        PAYMENT,
        [_pay(uuid4(), 1, "60.00"), _pay(uuid4(), 9, "1.00"), _pay(uuid4(), 1, "60.00")],
    )

    assert _status(answers) == [
        PaymentStatus.PAYMENT_APPROVED,
        PaymentStatus.PAYMENT_REJECTED,
        PaymentStatus.PAYMENT_REJECTED,
    ]
    assert [a.reason for a in answers[1:]] == [
        "unknown user 9",
        "insufficient funds: balance 40.00, amount 60.00",
    ]
    assert (await rows(engine, PAYMENT))[0] == (1, Decimal("40.00"))


def _random_stock(rng: random.Random, orders: Sequence[UUID]) -> list[Command]:
    make = rng.choice([_res, _res, _unres])
    return [make(rng.choice(orders), rng.choice([1, 3, 99]), rng.randint(1, 3))]


def _random_payment(rng: random.Random, orders: Sequence[UUID]) -> list[Command]:
    make = rng.choice([_pay, _pay, _unpay])
    return [make(rng.choice(orders), rng.choice([1, 2, 9]), rng.choice(["30.00", "45.50"]))]


async def test_random_batches_have_the_effect_of_their_commands_one_by_one(
    db: Databases,
) -> None:
    for seed in range(12):
        rng = random.Random(seed)
        orders = [uuid4() for _ in range(4)]
        for service, name, make in [
            (STOCK, "stock", _random_stock),
            (PAYMENT, "payment", _random_payment),
        ]:
            commands = [c for _ in range(10) for c in make(rng, orders)]
            one_by_one = await db.fresh(name)
            expected = (await apart(one_by_one, service, commands), await rows(one_by_one, service))
            at_once = await db.fresh(name)
            found = (await together(at_once, service, commands), await rows(at_once, service))
            assert found == expected, f"seed {seed}, {name}"

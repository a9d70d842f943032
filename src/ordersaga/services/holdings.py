"""The rules every holding participant follows, whatever it holds (stock, money).

A holding participant holds an amount of a holder's row (a product's stock, a user's
balance) for an order, and gives it back when the order's saga compensates. Its
commands come in pairs: *hold* (reserve-product, process-payment) and *release*
(cancel-product-reservation, cancel-payment). What it decides, and answers, is its own
(its ``rules.py``: the answers to an order held before, why a hold is refused, what a
release answers); how it decides is the same for all, and is here:

- A hold for an order that already has a row is answered from it and holds nothing.
  Otherwise the amount is taken in one conditional update (never read-modify-write),
  if that much is there; a refusal is recorded with its reason.
- A release for an order with no row leaves a tombstone, so a hold that arrives later
  is refused. Only a held row gives back, once: its status change is guarded in its
  WHERE clause, so of two releases racing for one row only one gives back. Anything
  else was never taken or is already back.

One row per order (its primary key) makes each effect happen at most once per order.
The batch skeleton (:mod:`~ordersaga.services.participant`) locks the holders, reads
the orders' rows and writes the new ones.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Column, bindparam, select, update

from ordersaga.contracts.messages import WireMessage
from ordersaga.messaging.handler import BatchHandler, HandlerContext
from ordersaga.services.participant import Known, Ledger, batch_handler

log = logging.getLogger(__name__)

S = TypeVar("S", bound=StrEnum)
Amount = Any  # int (units of stock) or Decimal (money)
Answer = tuple[str, WireMessage]


@dataclass(frozen=True, slots=True)
class Hold(Generic[S]):
    """An order's row, as the batch knows it."""

    holder: int
    amount: Amount
    status: S
    reason: str | None


@dataclass(frozen=True)
class Statuses(Generic[S]):
    """What the participant calls the four states of an order's row (``Statuses(*Enum)``
    for an enum that declares them in this order)."""

    held: S
    rejected: S
    released: S
    tombstone: S
    """The release came before any hold: a later hold is refused."""


class HoldingRules(Protocol):
    """What a holding participant's ``rules`` module says: its commands, its statuses, and
    its answers (pure functions)."""

    @property
    def HOLD(self) -> type[WireMessage]: ...
    @property
    def RELEASE(self) -> type[WireMessage]: ...
    @property
    def STATUSES(self) -> Statuses[Any]: ...
    @property
    def ACCEPTED(self) -> Any: ...
    @property
    def REFUSED(self) -> Any: ...
    @property
    def NOTHING(self) -> Amount: ...

    def holder_of(self, command: Any) -> int:
        """The holder a command takes from or gives back to."""

    def amount_of(self, command: Any) -> Amount:
        """The amount a hold command asks for."""

    def answer_existing(self, status: Any, reason: str | None) -> tuple[Any, str | None]:
        """The answer status (and reason) to a hold for an order that has a row."""

    def rejection_reason(self, holder: int, has: Amount | None, wanted: Amount) -> str:
        """Why a hold failed, given what the holder has (None: no such holder)."""

    def answer_hold(self, command: Any, status: Any, reason: str | None) -> Answer:
        """The answer to a hold command."""

    def answer_release(self, command: Any, given: Amount | None) -> Answer:
        """The answer to a release command that gave back ``given`` (None: nothing)."""


@dataclass(frozen=True)
class Holdings:
    """A holding participant: where its holders and order rows are, and its rules."""

    holder: Column[int]
    """The key of the holders' rows (``stock.product_id``)."""
    on_hand: Column[Any]
    """What a holder has (``stock.quantity``)."""
    record_holder: Column[int]
    """The holder column of the order rows' table (one row per order, keyed by
    ``order_id``, with ``status``, ``reason`` and timestamps)."""
    record_amount: Column[Any]
    rules: HoldingRules


@dataclass(frozen=True)
class _Writes:
    """What a rule does to the database beyond the batch's reads and inserts: built once
    and run with bound parameters (building a statement costs more than running it), on
    PostgreSQL and SQLite as text on the driver (:mod:`ordersaga.db.driver`)."""

    spec: Holdings

    @cached_property
    def _take(self) -> Any:
        spec, amount = self.spec, self.spec.on_hand.type
        return (
            update(spec.holder.table)
            .where(
                spec.holder == bindparam("wanted_holder"),
                spec.on_hand >= bindparam("wanted_amount", type_=amount),
            )
            .values({spec.on_hand: spec.on_hand - bindparam("wanted_amount", type_=amount)})
        )

    @cached_property
    def _on_hand(self) -> Any:
        return select(self.spec.on_hand).where(self.spec.holder == bindparam("wanted_holder"))

    @cached_property
    def _give_back(self) -> Any:
        spec, amount = self.spec, self.spec.on_hand.type
        return (
            update(spec.holder.table)
            .where(spec.holder == bindparam("wanted_holder"))
            .values({spec.on_hand: spec.on_hand + bindparam("given_amount", type_=amount)})
        )

    @cached_property
    def _release(self) -> Any:
        records, statuses = self.spec.record_holder.table, self.spec.rules.STATUSES
        return (
            update(records)
            .where(
                records.c.order_id == bindparam("wanted_order"),
                records.c.status == statuses.held.value,
            )
            .values(status=statuses.released.value, updated_at=bindparam("now"))
        )

    @cached_property
    def _text(self) -> dict[str, str]:
        holders, key, has = (
            self.spec.holder.table.name,
            self.spec.holder.name,
            self.spec.on_hand.name,
        )
        records = self.spec.record_holder.table.name
        return {
            "take": f"UPDATE {holders} SET {has} = {has} - $2 WHERE {key} = $1 AND {has} >= $2",
            "on_hand": f"SELECT {has} FROM {holders} WHERE {key} = $1",
            "give_back": f"UPDATE {holders} SET {has} = {has} + $2 WHERE {key} = $1",
            "release": f"UPDATE {records} SET status = $3, updated_at = $4 "
            "WHERE order_id = $1 AND status = $2",
        }

    async def taken(self, known: Known[Any], holder: int, wanted: Amount) -> bool:
        """Take ``wanted`` if that much is there, in one statement; True if it was."""
        if known.db is not None:
            amount = known.db.bind(self.spec.on_hand.type, wanted)
            return await known.db.execute(self._text["take"], holder, amount) == 1
        params = {"wanted_holder": holder, "wanted_amount": wanted}
        return (await known.conn.execute(self._take, params)).rowcount == 1

    async def on_hand(self, known: Known[Any], holder: int) -> Amount:
        if known.db is not None:
            has = await known.db.value(self._text["on_hand"], holder)
            return known.db.read(self.spec.on_hand.type, has)
        return await known.conn.scalar(self._on_hand, {"wanted_holder": holder})

    async def give_back(self, known: Known[Any], holder: int, given: Amount) -> None:
        if known.db is not None:
            amount = known.db.bind(self.spec.on_hand.type, given)
            await known.db.execute(self._text["give_back"], holder, amount)
        else:
            params = {"wanted_holder": holder, "given_amount": given}
            await known.conn.execute(self._give_back, params)

    async def released(self, known: Known[Any], order_id: str) -> bool:
        """Mark the stored row released; False if another release did first."""
        now = datetime.now(UTC)
        if known.db is not None:
            statuses = self.spec.rules.STATUSES
            held, released = statuses.held.value, statuses.released.value
            text = self._text["release"]
            return await known.db.execute(text, order_id, held, released, now) == 1
        params = {"wanted_order": order_id, "now": now}
        return (await known.conn.execute(self._release, params)).rowcount == 1


def holdings_handler(spec: Holdings) -> BatchHandler:
    """The handler of ``spec``'s hold and release commands, as one by one in order."""
    writes = _Writes(spec)
    rules = spec.rules
    records, statuses = spec.record_holder.table, rules.STATUSES
    status_of = type(statuses.held)

    async def hold_rule(known: Known[Hold[Any]], ctx: HandlerContext, command: Any) -> None:
        order_id = str(command.orderID)
        holder, wanted = rules.holder_of(command), rules.amount_of(command)
        existing = known.find(order_id)
        if existing is not None:
            status, reason = rules.answer_existing(existing.status, existing.reason)
        elif holder in known.holders and await writes.taken(known, holder, wanted):
            known.put(order_id, Hold(holder, wanted, statuses.held, None))
            status, reason = rules.ACCEPTED, None
        else:
            # An unknown holder has no row to take from: nothing to try.
            known_holder = holder in known.holders
            has = await writes.on_hand(known, holder) if known_holder else None
            reason = rules.rejection_reason(holder, has, wanted)
            known.put(order_id, Hold(holder, wanted, statuses.rejected, reason))
            status = rules.REFUSED
        if reason is not None:
            # DEBUG: the answer and the saga's history say it; at INFO a line per refusal.
            log.debug("saga %s: refused: %s", ctx.cause.saga_id, reason)
        ctx.send(*rules.answer_hold(command, status, reason))

    async def release_rule(known: Known[Hold[Any]], ctx: HandlerContext, command: Any) -> None:
        order_id = str(command.orderID)
        existing = known.find(order_id)
        given: Amount | None = None
        if existing is None:
            tombstone = Hold(rules.holder_of(command), rules.NOTHING, statuses.tombstone, None)
            known.put(order_id, tombstone)
        elif existing.status is statuses.held:
            # A row this batch made is not written yet: it is written released. A stored
            # one is released by a guarded update, which of two racing releases wins.
            if known.is_new(order_id) or await writes.released(known, order_id):
                await writes.give_back(known, existing.holder, existing.amount)
                given = existing.amount
            known.put(order_id, replace(existing, status=statuses.released))
        ctx.send(*rules.answer_release(command, given))

    def read(row: Mapping[str, Any]) -> Hold[Any]:
        return Hold(
            row[spec.record_holder.name],
            row[spec.record_amount.name],
            status_of(row["status"]),
            row["reason"],
        )

    def write(hold: Hold[Any]) -> dict[str, Any]:
        return {
            spec.record_holder.name: hold.holder,
            spec.record_amount.name: hold.amount,
            "status": hold.status.value,
            "reason": hold.reason,
        }

    return batch_handler(
        Ledger(
            holder=spec.holder,
            records=records,
            holder_of=rules.holder_of,
            read=read,
            write=write,
            rules={rules.HOLD: hold_rule, rules.RELEASE: release_rule},
        )
    )

"""Group commit of concurrent POSTs: the orders of the requests waiting together are
placed in one transaction, with one insert of orders and one of their messages.

The window is the transaction before: while one batch commits, the requests that
arrive wait, and go together in the next. So an idle service places a lone order at
once, without waiting on a timer, and a busy one pays the transaction, the round
trips and the fsync once per batch rather than once per order — and leaves the
database pool to the ``order-updated`` consumer, which shares it.

Each request still gets its own answer: its order (created, or replayed by its key),
or its own refusal. An error of the database fails the batch's requests alike, as it
would have failed each; a row of one order the database refuses (a key another
replica committed meanwhile, a value out of range) sends each order of the batch on
its own, so only that one fails.
"""

import asyncio

from sqlalchemy.exc import DataError, IntegrityError

from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.services.order.catalog import CatalogCache
from ordersaga.services.order.model import OrderRejected, Placement
from ordersaga.services.order.placing import Ask, Outcome, place_order, place_orders

MAX_BATCH = 200
"""The most orders one transaction places."""

_Waiting = tuple[Ask, asyncio.Future[Placement]]


class GroupCommit:
    """Places orders for concurrent callers, together; :meth:`place` is one caller's."""

    def __init__(
        self, transactions: Transactions, catalog: CatalogCache, max_batch: int = MAX_BATCH
    ) -> None:
        self._transactions = transactions
        self._catalog = catalog
        self._max_batch = max_batch
        self._waiting: list[_Waiting] = []
        self._committing: asyncio.Task[None] | None = None

    async def place(self, ask: Ask) -> Placement:
        """``ask``'s order, created or replayed; raises its refusal (an
        :class:`OrderRejected`) or the database's error."""
        placed: asyncio.Future[Placement] = asyncio.get_running_loop().create_future()
        self._waiting.append((ask, placed))
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit_waiting(), name="order-placing")
        return await placed

    async def _commit_waiting(self) -> None:
        # A turn of the loop first: the requests read in this turn go in this batch.
        await asyncio.sleep(0)
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            try:
                await self._commit(batch)
            except asyncio.CancelledError:
                for _, placed in batch + self._waiting:
                    placed.cancel()
                raise
            except BaseException as error:  # the database's: each request's error alike
                for _, placed in batch:
                    if not placed.done():
                        placed.set_exception(error)

    async def _commit(self, batch: list[_Waiting]) -> None:
        live = [(ask, placed) for ask, placed in batch if not placed.done()]  # a caller gone
        asks = [ask for ask, _ in live]
        if not asks:
            return
        try:
            outcomes: list[Outcome | Exception] = list(
                await place_orders(self._transactions, self._catalog, asks)
            )
        except (IntegrityError, DataError):
            # place_order settles a key committed meanwhile, and fails an order alone.
            outcomes = [await self._alone(ask) for ask in asks]
        for (_, placed), outcome in zip(live, outcomes, strict=True):
            if placed.done():
                continue
            if isinstance(outcome, Placement):
                placed.set_result(outcome)
            else:
                placed.set_exception(outcome)

    async def _alone(self, ask: Ask) -> Outcome | Exception:
        try:
            return await place_order(
                self._transactions,
                ask.request,
                idempotency_key=ask.idempotency_key,
                traceparent=ask.traceparent,
                catalog=self._catalog,
            )
        except OrderRejected as refused:
            return refused
        except Exception as error:  # that order's own: answered to it alone
            return error

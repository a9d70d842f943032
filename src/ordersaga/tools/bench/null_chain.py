"""The null chain: the ceiling of the messaging path, measured like the system.

A completed saga sends seven messages (order-created, reserve-product, product-reserved,
process-payment, payment-processed, order-updated, order-status-applied), each through
Kafka from one service to another. The null chain sends the same messages through the
same topics in the same order, with the same Kafka adapter and settings and the same
cycle per batch (poll, handle, produce with acks, commit offsets), but its handlers only
forward: no database, no HTTP. One process per stage, split as the services are:

- ``source``, in the order service's place, starts sagas (keeping ``--in-flight`` of
  them going), takes their order-updated and acknowledges it (order-status-applied);
- ``orchestrator``, ``stock`` and ``payment`` forward what they receive to the next topic;
  the orchestrator takes the acknowledgement and forwards nothing.

Run as ``python -m ordersaga.tools.bench.null_chain STAGE``; stopped by SIGTERM.
"""

import argparse
import asyncio
import itertools
import signal
import time
import uuid
from decimal import Decimal
from pathlib import Path

import orjson

from ordersaga.config import Settings
from ordersaga.contracts import headers as h
from ordersaga.contracts import topics
from ordersaga.contracts.messages import OrderCreated
from ordersaga.contracts.statuses import OrderStatus
from ordersaga.messaging.envelope import envelope
from ordersaga.messaging.factory import make_broker
from ordersaga.messaging.offsets import PendingOffsets
from ordersaga.messaging.port import Broker, OutgoingMessage, Record
from ordersaga.saga.definition import SagaDefinition
from ordersaga.services.orchestrator.place_order import PLACE_ORDER

SOURCE = "source"
MAX_RECORDS = 200  # as the services' consumer loops poll
PROBE_TIMEOUT = 90.0
FINISH_TIMEOUT = 30.0


def routes(definition: SagaDefinition = PLACE_ORDER) -> dict[str, dict[str, str]]:
    """Per forwarding stage: topic consumed → topic forwarded to, as a completed saga goes."""
    steps = definition.steps
    orchestrator = {topics.ORDER_CREATED: steps[0].command_topic}
    for step, following in itertools.pairwise(steps):
        orchestrator[step.reply_topic] = following.command_topic
    orchestrator[steps[-1].reply_topic] = topics.ORDER_UPDATED
    stages = {"orchestrator": orchestrator}
    for step in steps:
        stages.setdefault(step.party, {})[step.command_topic] = step.reply_topic
    return stages


def completed_flow(definition: SagaDefinition = PLACE_ORDER) -> list[str]:
    """The topics of a completed saga's messages, in the order they are sent."""
    middle = [t for step in definition.steps for t in (step.command_topic, step.reply_topic)]
    return [topics.ORDER_CREATED, *middle, topics.ORDER_UPDATED, definition.outcome_ack_topic]


def taken(definition: SagaDefinition = PLACE_ORDER) -> dict[str, list[str]]:
    """Per forwarding stage: topics consumed and forwarded nowhere (the end of a saga)."""
    return {"orchestrator": [definition.outcome_ack_topic]}


STAGES = (SOURCE, *routes())


def _forwarded(record: Record, topic: str) -> OutgoingMessage:
    headers = dict(record.headers)
    headers[h.MESSAGE_ID] = str(uuid.uuid4())
    return OutgoingMessage(topic, record.key, record.value, headers)


async def forward(broker: Broker, stage: str, stop: asyncio.Event) -> None:
    """Forward every record of the stage's topics to the next topic until ``stop``."""
    stage_routes = routes()[stage]
    subscribed = [*stage_routes, *taken().get(stage, [])]
    consumer = broker.consumer(f"null-chain-{stage}", subscribed, f"null-{stage}-1")
    producer = broker.producer()
    pending = PendingOffsets()  # committed as the services commit theirs
    try:
        while not stop.is_set():
            records = await consumer.poll(MAX_RECORDS, timeout=pending.wait(0.5))
            if records:
                onward = [r for r in records if r.topic in stage_routes]
                await producer.send_batch([_forwarded(r, stage_routes[r.topic]) for r in onward])
                await pending.handled(consumer, records)
            else:
                await pending.commit(consumer)
    finally:
        await consumer.close()
        await producer.close()


class Source:
    """Starts sagas, keeping ``in_flight`` of them going, and times each to its end."""

    def __init__(self, broker: Broker, in_flight: int) -> None:
        self._broker = broker
        self._in_flight = in_flight
        self.running: dict[str, float] = {}  # orderID → when it was started (epoch)
        self.done: list[tuple[float, float]] = []
        self._room = asyncio.Event()

    def _new_saga(self) -> OutgoingMessage:
        order = OrderCreated(
            orderID=uuid.uuid4(),
            userID=1001,
            productID=1001,
            quantity=1,
            amount=Decimal("1.00"),
            status=OrderStatus.ORDER_CREATED,
        )
        self.running[order.key] = time.time()
        return envelope(topics.ORDER_CREATED, order)

    async def take_finished(self, stop: asyncio.Event) -> None:
        consumer = self._broker.consumer("null-chain-source", [topics.ORDER_UPDATED], "null-1")
        producer = self._broker.producer()
        pending = PendingOffsets()
        try:
            while not stop.is_set():
                records = await consumer.poll(MAX_RECORDS, timeout=pending.wait(0.5))
                now = time.time()
                for record in records:
                    started = self.running.pop(record.key, None)
                    if started is not None:
                        self.done.append((started, now))
                if records:
                    # Acknowledged as the order service does, after the update is taken.
                    ack = PLACE_ORDER.outcome_ack_topic
                    await producer.send_batch([_forwarded(r, ack) for r in records])
                    await pending.handled(consumer, records)
                    self._room.set()
                else:
                    await pending.commit(consumer)
        finally:
            await consumer.close()
            await producer.close()

    async def probe(self, timeout: float) -> None:
        """One saga through the whole chain: every stage has joined its group."""
        producer = self._broker.producer()
        try:
            await producer.send_batch([self._new_saga()])
        finally:
            await producer.close()
        deadline = time.monotonic() + timeout
        while self.running:
            if time.monotonic() > deadline:
                raise TimeoutError(f"a saga did not go through the null chain in {timeout:g}s")
            await asyncio.sleep(0.05)
        self.done.clear()

    async def start_sagas(self, stop: asyncio.Event) -> None:
        producer = self._broker.producer()
        try:
            while not stop.is_set():
                room = self._in_flight - len(self.running)
                if room <= 0:
                    self._room.clear()
                    await self._room.wait()
                    continue
                await producer.send_batch([self._new_saga() for _ in range(min(room, 500))])
        finally:
            await producer.close()

    def wake(self) -> None:
        self._room.set()


async def run_source(broker: Broker, in_flight: int, ready: Path, result: Path) -> None:
    """Probe, say ready, start sagas until SIGTERM, let the last ones end, write them."""
    stopping = _stop_on_signals()
    finished_stop = asyncio.Event()
    source = Source(broker, in_flight)
    sink = asyncio.create_task(source.take_finished(finished_stop))
    try:
        await source.probe(PROBE_TIMEOUT)
        ready.write_text(str(time.time()))
        stopping.add_done_callback(lambda _: source.wake())
        await source.start_sagas(_event_of(stopping))
        deadline = time.monotonic() + FINISH_TIMEOUT
        while source.running and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        finished_stop.set()
        await sink
    sagas = [[s, f] for s, f in source.done] + [[s, None] for s in source.running.values()]
    result.write_bytes(orjson.dumps({"sagas": sagas}))


def _stop_on_signals() -> asyncio.Future[None]:
    loop = asyncio.get_running_loop()
    stopped: asyncio.Future[None] = loop.create_future()

    def stop() -> None:
        if not stopped.done():
            stopped.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    return stopped


def _event_of(future: asyncio.Future[None]) -> asyncio.Event:
    event = asyncio.Event()
    future.add_done_callback(lambda _: event.set())
    return event


async def main(args: argparse.Namespace) -> None:
    settings = Settings()
    broker = make_broker(settings)
    try:
        await broker.create_topics(topics.with_dead_letters(), settings.partitions)
        if args.stage == SOURCE:
            await run_source(broker, args.in_flight, args.ready, args.result)
        else:
            stop = _event_of(_stop_on_signals())
            await forward(broker, args.stage, stop)
    finally:
        await broker.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ordersaga.tools.bench.null_chain")
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--in-flight", type=int, default=2000)
    parser.add_argument("--ready", type=Path, help="written once the chain answers (source)")
    parser.add_argument("--result", type=Path, help="the sagas' times, as JSON (source)")
    args = parser.parse_args(argv)
    if args.stage == SOURCE and (args.ready is None or args.result is None):
        parser.error("the source needs --ready and --result")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))

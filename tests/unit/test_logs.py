"""Structured logs: a handled message's lines name it, as JSON or as readable lines."""

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.contracts import headers as h
from ordersaga.contracts import topics
from ordersaga.contracts.codec import decode
from ordersaga.contracts.messages import ReserveProduct
from ordersaga.db.engine import make_engine, sqlite_url
from ordersaga.messaging.batch import handle_batch
from ordersaga.messaging.envelope import envelope
from ordersaga.messaging.handler import Decoded, HandlerContext, one_by_one
from ordersaga.messaging.port import Record
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.observability.logs import LogFormat, log_context, log_format_for, log_handler
from ordersaga.services.stock.tables import inbox, metadata, outbox
from tests.persistence.support import reserve

log = logging.getLogger("ordersaga.services.stock.test")


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_url(tmp_path / "stock.sqlite3"))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@contextmanager
def captured(wanted: LogFormat) -> Iterator[io.StringIO]:
    """Everything logged inside, as the replica stock-1 writes it in format ``wanted``."""
    stream = io.StringIO()
    handler = log_handler(wanted, "stock", "stock-1", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def reserving(ctx: HandlerContext, message: ReserveProduct) -> None:
    log.info("reserving %d of product %d", message.quantity, message.productID)


async def handle_one(engine: AsyncEngine) -> Record:
    """A reserve-product handled as the consumer loop handles it, logging a line."""
    sent = envelope(topics.RESERVE_PRODUCT, reserve(2, 3))
    record = Record(sent.topic, 4, 41, sent.key, sent.value, sent.headers)
    item = Decoded(record, decode(record.topic, record.value), record.headers[h.MESSAGE_ID])
    units = Transactions(engine, outbox, inbox)
    with log_context(group="stock-service"):
        await handle_batch(units, [item], {topics.RESERVE_PRODUCT: one_by_one(reserving)})
    return record


async def test_a_handled_messages_json_line_names_it(engine: AsyncEngine) -> None:
    with captured("json") as stream:
        record = await handle_one(engine)
    [line] = stream.getvalue().splitlines()
    event = json.loads(line)
    assert event["message"] == "reserving 3 of product 2"
    assert event["level"] == "INFO"
    assert (event["service"], event["replica"]) == ("stock", "stock-1")
    assert event["logger"] == "ordersaga.services.stock.test"
    assert event["saga_id"] == event["order_id"] == record.key
    assert event["trace_id"] == record.headers[h.TRACEPARENT].split("-")[1]
    assert event["message_id"] == record.headers[h.MESSAGE_ID]
    assert (event["topic"], event["partition"], event["offset"]) == ("reserve-product", 4, 41)
    assert event["group"] == "stock-service"
    assert event["time"].endswith("+00:00")


async def test_a_handled_messages_console_line_is_readable(engine: AsyncEngine) -> None:
    with captured("console") as stream:
        record = await handle_one(engine)
    [line] = stream.getvalue().splitlines()
    assert " INFO    stock-1 ordersaga.services.stock.test: reserving 3 of product 2  " in line
    assert f"saga_id={record.key} order_id={record.key} " in line
    assert "topic=reserve-product partition=4 offset=41 group=stock-service" in line
    assert not line.lstrip().startswith("{")


def test_an_error_with_its_traceback_is_one_json_line() -> None:
    with captured("json") as stream:
        try:
            raise ValueError("bad value")
        except ValueError:
            log.exception("it failed")
    [line] = stream.getvalue().splitlines()
    event = json.loads(line)
    assert event["level"] == "ERROR"
    assert "ValueError: bad value" in event["exception"]


def test_context_outside_a_block_is_gone() -> None:
    with captured("json") as stream:
        with log_context(saga_id="s-1"):
            log.info("inside")
        log.info("outside")
    inside, outside = map(json.loads, stream.getvalue().splitlines())
    assert inside["saga_id"] == "s-1"
    assert "saga_id" not in outside


def test_json_off_a_terminal_console_on_one_unless_told() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert log_format_for(None, io.StringIO()) == "json"
    assert log_format_for(None, Terminal()) == "console"
    assert log_format_for("json", Terminal()) == "json"
    assert log_format_for("console", io.StringIO()) == "console"

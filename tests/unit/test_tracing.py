"""Trace context through a handled message, its outbox row and its publish; settings."""

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.contracts import headers as h
from ordersaga.contracts import topics
from ordersaga.contracts.codec import decode
from ordersaga.contracts.messages import ProductReserved, ReserveProduct
from ordersaga.contracts.statuses import StockStatus
from ordersaga.db.engine import make_engine, sqlite_url
from ordersaga.messaging.batch import handle_batch
from ordersaga.messaging.envelope import envelope
from ordersaga.messaging.handler import Decoded, HandlerContext, one_by_one
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.messaging.outbox import OutboxRelay
from ordersaga.messaging.port import Record
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.observability.tracing import (
    NO_TRACING,
    Tracing,
    TracingConfigError,
    exporter_names,
    format_traceparent,
    new_traceparent,
    origin_traceparent,
    parse_traceparent,
    tracing_from_env,
    tracing_to,
)
from ordersaga.services.stock.tables import inbox, metadata, outbox
from tests.persistence.support import reserve


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_url(tmp_path / "stock.sqlite3"))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def answer(ctx: HandlerContext, message: ReserveProduct) -> None:
    ctx.send(
        topics.PRODUCT_RESERVED,
        ProductReserved(
            orderID=message.orderID,
            userID=message.userID,
            productID=message.productID,
            quantity=message.quantity,
            status=StockStatus.AVAILABLE,
        ),
    )


def record_of(command: ReserveProduct, traceparent: str) -> Record:
    sent = envelope(topics.RESERVE_PRODUCT, command)
    return Record(
        topic=sent.topic,
        partition=2,
        offset=7,
        key=sent.key,
        value=sent.value,
        headers={**sent.headers, h.TRACEPARENT: traceparent},
    )


async def handle_and_publish(
    engine: AsyncEngine, tracing: Tracing, record: Record
) -> tuple[str, Record]:
    """Handle ``record`` as the consumer does, then publish the outbox as the relay does:
    the outbox row's ``traceparent`` and the record published."""
    units = Transactions(engine, outbox, inbox, tracing=tracing)
    item = Decoded(record, decode(record.topic, record.value), record.headers[h.MESSAGE_ID])
    await handle_batch(units, [item], {topics.RESERVE_PRODUCT: one_by_one(answer)}, "stock")
    async with engine.connect() as conn:
        [row_headers] = (await conn.execute(select(outbox.c.headers))).scalars()
    broker = InProcessBroker(partitions=1)
    relay = OutboxRelay(engine, outbox, broker.producer(), tracing=tracing)
    assert await relay.publish_once() == 1
    [published] = broker.records(topics.PRODUCT_RESERVED)
    return json.loads(row_headers)[h.TRACEPARENT], published


async def test_a_handled_message_and_its_answer_are_parent_and_child(engine: AsyncEngine) -> None:
    exporter = InMemorySpanExporter()
    tracing = tracing_to([exporter], "stock", "1", batch=False)
    client = new_traceparent()
    row_traceparent, published = await handle_and_publish(
        engine, tracing, record_of(reserve(1, 1), client)
    )
    spans = {s.name: s for s in exporter.get_finished_spans()}
    processed, publish = spans["process reserve-product"], spans["publish product-reserved"]
    assert processed.kind is SpanKind.CONSUMER and publish.kind is SpanKind.PRODUCER
    client_context = parse_traceparent(client)
    assert client_context is not None and processed.parent is not None
    # The consumer span is the child of the span that sent the record...
    assert processed.parent.span_id == client_context.span_id
    assert processed.context is not None and publish.context is not None
    assert processed.context.trace_id == client_context.trace_id
    # ...its answer's outbox row carries it...
    assert row_traceparent == format_traceparent(processed.context)
    # ...and the publish span, the row's child, goes out on the record.
    assert publish.parent is not None and publish.parent.span_id == processed.context.span_id
    assert published.headers[h.TRACEPARENT] == format_traceparent(publish.context)
    assert processed.attributes is not None
    assert processed.attributes["messaging.destination.name"] == topics.RESERVE_PRODUCT
    assert processed.attributes["messaging.kafka.offset"] == 7
    assert processed.attributes["ordersaga.saga_id"] == published.key


async def test_untraced_a_message_passes_its_traceparent_on(engine: AsyncEngine) -> None:
    client = new_traceparent()
    row_traceparent, published = await handle_and_publish(
        engine, NO_TRACING, record_of(reserve(1, 1), client)
    )
    assert row_traceparent == client
    assert published.headers[h.TRACEPARENT] == client


def test_a_traceparent_is_read_back_as_written() -> None:
    header = new_traceparent()
    context = parse_traceparent(header)
    assert context is not None and context.trace_flags.sampled
    assert format_traceparent(context) == header


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "nonsense",
        "00-" + "0" * 32 + "-0123456789abcdef-01",  # all-zero trace id
        "00-0123456789abcdef0123456789abcdef-" + "0" * 16 + "-01",  # all-zero span id
        "ff-0123456789abcdef0123456789abcdef-0123456789abcdef-01",  # version ff
        "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01-extra",
        "00-0123456789abcdef0123456789abcdeg-0123456789abcdef-01",  # not hex
    ],
)
def test_an_invalid_traceparent_is_none(header: str | None) -> None:
    assert parse_traceparent(header) is None


def test_a_saga_joins_a_valid_client_traceparent_only() -> None:
    client = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"
    assert origin_traceparent(client) == client
    started = origin_traceparent("garbage")
    assert parse_traceparent(started) is not None and started != client
    assert origin_traceparent(None) != origin_traceparent(None)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, []),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console, otlp"}, ["console", "otlp"]),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, []),
    ],
)
def test_exporters_come_from_the_otel_variables(
    environ: dict[str, str], expected: list[str]
) -> None:
    assert exporter_names(environ) == expected


def test_no_exporter_means_no_tracing() -> None:
    assert tracing_from_env("stock", "1", {}) is NO_TRACING
    assert not NO_TRACING.enabled


def test_an_unknown_exporter_is_named() -> None:
    with pytest.raises(TracingConfigError, match=r"unknown exporter 'jaeger'.*otlp, console, none"):
        exporter_names({"OTEL_TRACES_EXPORTER": "otlp,jaeger"})


def test_otlp_over_grpc_is_refused_with_what_to_use() -> None:
    with pytest.raises(TracingConfigError, match="http/protobuf"):
        tracing_from_env(
            "stock", "1", {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
        )

"""``ordersaga dlq list | show | replay``: dead letters, for an operator to look at and replay.

The commands read the Kafka cluster of the settings (``ORDERSAGA_KAFKA_*``) or, with
``--data-dir``, the embedded system's broker file ``DIR/broker.sqlite3``.
"""

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from aiokafka.errors import KafkaError  # type: ignore[import-untyped]
from rich.console import Console

from ordersaga.cli.dlq_report import (
    describe,
    inspection_document,
    letter_document,
    letters_listing,
)
from ordersaga.cli.errors import (
    CommandGroup,
    ServerUnreachable,
    fail,
    kafka_unreachable,
    unreachable,
)
from ordersaga.cli.json_output import JsonFlag, echo_json
from ordersaga.config import Settings
from ordersaga.messaging.dead_letters import (
    DLQ_TOPICS,
    EMBEDDED_LIMITS,
    KAFKA_LIMITS,
    DeadLetter,
    DeadLetterError,
    ReadLimits,
    dead_letter_topic,
    find_dead_letter,
    inspect,
    replay,
)
from ordersaga.messaging.factory import make_broker
from ordersaga.messaging.memory import BROKER_FILE, InProcessBroker
from ordersaga.messaging.port import Broker

T = TypeVar("T")

"""The embedded system's broker log, under its data directory."""


dlq_app = typer.Typer(
    help="Dead letters (<topic>.DLQ): list them, show one, replay them to their topic.",
    no_args_is_help=True,
    add_completion=False,
    cls=CommandGroup,
)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help=f"Use the embedded system's broker (DIR/{BROKER_FILE}) instead of the "
        "configured Kafka.",
    ),
]
Wait = Annotated[
    float | None,
    typer.Option(
        "--wait",
        min=0,
        help="Seconds to wait for a first record of topics that hold some, before giving "
        f"up (default {KAFKA_LIMITS.patience:g} on Kafka, where a consumer group takes a "
        "moment to form). Empty topics are not waited for.",
    ),
]
DlqTopic = Annotated[str, typer.Argument(help="The dead-letter topic, e.g. order-updated.DLQ.")]
Partition = Annotated[int, typer.Argument(min=0, help="The partition on the dead-letter topic.")]
Offset = Annotated[int, typer.Argument(min=0, help="The offset on the dead-letter topic.")]


class Refused(Exception):
    """A command that cannot be carried out, for a reason to tell the user; exit ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@dlq_app.command("list")
def list_command(
    topic: Annotated[
        str | None,
        typer.Option(help="Only this topic's dead letters (order-updated or order-updated.DLQ)."),
    ] = None,
    replays: Annotated[
        bool,
        typer.Option(
            "--replays",
            help="Also count each dead letter's replays, by reading the source topics "
            "in full (slow on a busy cluster).",
        ),
    ] = False,
    data_dir: DataDir = None,
    wait: Wait = None,
    as_json: JsonFlag = False,
) -> None:
    """List every dead letter on the contract's <topic>.DLQ topics, or on one of them."""
    with _reporting_errors():
        dlq_topics = [_dlq_topic(topic, source_ok=True)] if topic else DLQ_TOPICS
        found = _execute(
            data_dir, wait, lambda b, limits: inspect(b, dlq_topics, limits, count_replays=replays)
        )
    if as_json:
        echo_json(inspection_document(found))
        return
    console = Console()
    if not found.letters:
        where = dlq_topics[0] if topic else f"any of the {len(dlq_topics)} dead-letter topics"
        console.print(f"No dead letters on {where}.", markup=False)
        return
    console.print(letters_listing(found, console.width))
    for name, count in sorted(found.counts().items()):
        console.print(f"{name}: {count} dead letter{'s' if count != 1 else ''}", markup=False)


@dlq_app.command("show")
def show_command(
    dlq_topic: DlqTopic,
    partition: Partition,
    offset: Offset,
    data_dir: DataDir = None,
    wait: Wait = None,
    as_json: JsonFlag = False,
) -> None:
    """Print one dead letter whole: its key, every header, and its value (pretty JSON when
    it parses, the raw bytes otherwise)."""
    with _reporting_errors():
        name = _dlq_topic(dlq_topic)
        letter = _execute(
            data_dir, wait, lambda b, limits: find_dead_letter(b, name, partition, offset, limits)
        )
    if as_json:
        echo_json(letter_document(letter))
    else:
        typer.echo(describe(letter))


@dlq_app.command("replay")
def replay_command(
    dlq_topic: DlqTopic,
    partition: Annotated[
        int | None, typer.Argument(min=0, help="The partition on the dead-letter topic.")
    ] = None,
    offset: Annotated[
        int | None, typer.Argument(min=0, help="The offset on the dead-letter topic.")
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Replay every dead letter of DLQ_TOPIC.")
    ] = False,
    keep_message_id: Annotated[
        bool,
        typer.Option(
            "--keep-message-id/--new-message-id",
            help="Keep the message-id (the default), so the consumer's inbox applies a "
            "message at most once however often it is replayed, and skips it if it was "
            "handled after all (delivered again, or published twice). A message was "
            "dead-lettered because its transaction rolled back, so its id is not in the "
            "inbox and the replay is handled. --new-message-id makes the replay a new "
            "message, applied even if the original was: only to apply an effect again.",
        ),
    ] = True,
    data_dir: DataDir = None,
    wait: Wait = None,
) -> None:
    """Publish dead letters again to their source topic: same key, value and headers
    (without the dlq-* ones), plus dlq-replayed-from. The dead letter stays where it is.

    With --data-dir, stop the embedded system first: its broker file has one writer."""
    with _reporting_errors():
        name = _dlq_topic(dlq_topic)
        if every != (partition is None) or (partition is None) != (offset is None):
            raise Refused("give PARTITION and OFFSET, or --all")

        async def run(broker: Broker, limits: ReadLimits) -> list[DeadLetter]:
            if every:
                letters = (await inspect(broker, [name], limits)).letters
            else:
                assert partition is not None and offset is not None
                letters = [await find_dead_letter(broker, name, partition, offset, limits)]
            await replay(broker, letters, keep_message_id=keep_message_id)
            return letters

        replayed = _execute(data_dir, wait, run)
    if not replayed:
        typer.echo(f"No dead letters on {name}: nothing to replay.")
    id_note = "same message-id" if keep_message_id else "new message-id"
    for letter in replayed:
        typer.echo(f"replayed {letter.address} to {letter.source_topic} ({id_note})")


def _dlq_topic(name: str, *, source_ok: bool = False) -> str:
    """The contract's dead-letter topic ``name`` names (or whose source it names)."""
    try:
        return dead_letter_topic(name, source_ok=source_ok)
    except DeadLetterError as error:
        raise Refused(str(error)) from None


@contextlib.contextmanager
def _reporting_errors() -> Iterator[None]:
    """Turn the errors a user can cause into one line on stderr and an exit code."""
    try:
        yield
    except Refused as error:
        _fail(str(error), error.code)
    except DeadLetterError as error:
        _fail(str(error), 1)


def _fail(message: str, code: int) -> None:
    fail(message, code)


def _execute(
    data_dir: Path | None,
    wait: float | None,
    work: Callable[[Broker, ReadLimits], Coroutine[Any, Any, T]],
) -> T:
    """Run ``work`` on the broker the options choose, and close it."""
    with _quiet("aiokafka"):  # its connection errors are reported here, in one line
        return asyncio.run(_on_broker(data_dir, wait, work))


async def _on_broker(
    data_dir: Path | None,
    wait: float | None,
    work: Callable[[Broker, ReadLimits], Coroutine[Any, Any, T]],
) -> T:
    if data_dir is not None:
        broker, limits, where = _embedded_broker(data_dir)
    else:
        broker, limits, where = _kafka_broker()
    if wait is not None:
        limits = ReadLimits(patience=wait, quiet=limits.quiet)
    try:
        return await work(broker, limits)
    except KafkaError as error:
        if unreachable(error):
            raise ServerUnreachable(kafka_unreachable(where, error)) from error
        raise Refused(
            f"Kafka at {where} failed: {error}. Is it running (`make infra-up`), and is "
            "ORDERSAGA_KAFKA_BOOTSTRAP_SERVERS right?",
            code=1,
        ) from None
    except sqlite3.Error as error:
        raise Refused(f"cannot use {where}: {error}", code=1) from None
    finally:
        await broker.close()


def _embedded_broker(data_dir: Path) -> tuple[Broker, ReadLimits, str]:
    path = data_dir / BROKER_FILE
    if not path.is_file():
        raise Refused(
            f"no embedded broker under {data_dir} ({BROKER_FILE} is missing): give the "
            "--data-dir of `ordersaga up --embedded`"
        )
    try:
        return InProcessBroker(path), EMBEDDED_LIMITS, str(path)
    except sqlite3.Error as error:
        raise Refused(f"{path} is not a broker file: {error}") from None


def _kafka_broker() -> tuple[Broker, ReadLimits, str]:
    try:
        settings = Settings()
        return make_broker(settings), KAFKA_LIMITS, settings.kafka_bootstrap_servers
    except ValueError as error:  # pydantic's ValidationError is one too
        raise Refused(" ".join(str(error).split())) from None


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)

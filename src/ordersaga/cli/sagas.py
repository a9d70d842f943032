"""``ordersaga sagas list | show | retry``: the orchestrator's sagas, for an operator.

They act on the orchestrator's database: the embedded system's under ``--data-dir``,
else the one ``ORDERSAGA_ORCHESTRATOR_DB_URL`` names. A retry is written to the
orchestrator's outbox; the running orchestrator publishes it.
"""

import asyncio
import contextlib
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import DBAPIError

from ordersaga.cli.errors import FAILED, USAGE, CommandGroup, database_failed, fail
from ordersaga.cli.json_output import JsonFlag, echo_json
from ordersaga.cli.listing import Field, Item, listing
from ordersaga.config import Settings
from ordersaga.db.engine import make_engine, sqlite_url
from ordersaga.db.timestamps import utc_now
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.runtime.embedded import database_path
from ordersaga.saga import search
from ordersaga.saga.registry import UnknownSagaVersion
from ordersaga.saga.retention import export_finished_sagas
from ordersaga.saga.search import BadQuery, SagaQuery
from ordersaga.saga.state import SagaStatus
from ordersaga.services.orchestrator.operations import (
    ActionRefused,
    SagaDetail,
    SagaOperations,
    SagaView,
    UnknownSaga,
)
from ordersaga.services.orchestrator.tables import outbox, saga_history, saga_instances
from ordersaga.services.orchestrator.wiring import place_order_runner
from ordersaga.services.registry import service

T = TypeVar("T")

sagas_app = typer.Typer(
    help="The orchestrator's sagas: list them, show one's history, retry a parked one, "
    "export finished ones.",
    no_args_is_help=True,
    add_completion=False,
    cls=CommandGroup,
)

def parse_age(text: str) -> timedelta:
    """``30s``, ``5m``, ``2h`` or ``1d`` as a duration; a usage error for anything else."""
    try:
        return search.parse_age(text)
    except BadQuery as error:
        raise typer.BadParameter(error.message) from None


def parse_state(text: str) -> SagaStatus:
    """A saga state by its name, in any case; a usage error naming the states otherwise."""
    try:
        return search.parse_state(text)
    except BadQuery as error:
        raise typer.BadParameter(error.message) from None


DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="The embedded system's data directory (its orchestrator.sqlite3); "
        "default: the database ORDERSAGA_ORCHESTRATOR_DB_URL names.",
    ),
]
State = Annotated[
    SagaStatus | None,
    typer.Option(
        "--state",
        parser=parse_state,
        metavar="|".join(SagaStatus),
        help="Only sagas in this state.",
    ),
]
OlderThan = Annotated[
    timedelta | None,
    typer.Option(
        "--older-than",
        parser=parse_age,
        metavar="AGE",
        help="Only sagas begun at least this long ago: 30s, 5m, 2h, 1d.",
    ),
]
NewerThan = Annotated[
    timedelta | None,
    typer.Option(
        "--newer-than",
        parser=parse_age,
        metavar="AGE",
        help="Only sagas begun at most this long ago: 30s, 5m, 2h, 1d.",
    ),
]
UserId = Annotated[int | None, typer.Option("--user-id", help="Only this user's sagas.")]
Step = Annotated[
    str | None, typer.Option("--step", help="Only sagas at this step (reserve_stock...).")
]
Parked = Annotated[
    bool | None,
    typer.Option("--parked/--not-parked", help="Only parked sagas, or only the others."),
]
ReasonText = Annotated[
    str | None, typer.Option("--reason-contains", help="Only sagas whose reason has this text.")
]
Limit = Annotated[int, typer.Option("--limit", min=1, help="At most this many sagas.")]
SagaId = Annotated[str, typer.Argument(help="The saga's id (its order's orderID).")]


SAGA_FIELDS = (
    Field("saga", keep=9),
    Field("state", keep=8),
    Field("age", keep=7, justify="right"),
    Field("step", keep=5),
    Field("deadline", keep=4),
    Field("attempts", keep=3, justify="right"),
)
HISTORY_FIELDS = (
    Field("#", keep=9, justify="right"),
    Field("at", keep=5),
    Field("event", keep=8),
    Field("outcome", keep=7),
    Field("from → to", keep=6),
    Field("step", keep=4, justify="right"),
)
TIMELINE_FIELDS = (
    Field("at", keep=9),
    Field("lane", keep=8),
    Field("kind", keep=7),
    Field("topic", keep=6),
    Field("where", keep=4),
    Field("step", keep=5),
)


@sagas_app.command("list")
def list_command(
    state: State = None,
    older_than: OlderThan = None,
    newer_than: NewerThan = None,
    user_id: UserId = None,
    step: Step = None,
    parked: Parked = None,
    reason: ReasonText = None,
    limit: Limit = 50,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """List sagas, newest first, each with its reason under it, and a count of all sagas
    by state. The filters are the admin API's (GET /admin/v1/sagas)."""
    query = SagaQuery(
        state=state,
        older_than=older_than,
        newer_than=newer_than,
        user_id=user_id,
        parked=parked,
        reason=reason,
        limit=limit,
    )

    async def run(operations: SagaOperations) -> tuple[list[SagaView], dict[SagaStatus, int]]:
        found = await operations.search(query, step)
        return found.sagas, await operations.count()

    found, counts = _run(data_dir, run)
    if as_json:
        echo_json({"sagas": found, "counts": counts})
        return
    now = utc_now()
    items = [
        Item(
            [
                saga.saga_id,
                _status_text(saga.status),
                duration_text(now - saga.created_at),
                escape(saga.step_name),
                _deadline_text(saga.deadline, now),
                str(saga.attempts),
            ],
            note=saga.reason or "",
        )
        for saga in found
    ]
    console = Console()
    console.print(listing(f"Sagas ({len(found)} shown)", SAGA_FIELDS, items, console.width))
    console.print("All sagas by state: " + ", ".join(f"{s} {n}" for s, n in counts.items()))


@sagas_app.command("show")
def show_command(saga_id: SagaId, data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Show one saga and its whole history."""

    async def run(operations: SagaOperations) -> SagaDetail:
        return await operations.show(saga_id)

    detail = _run(data_dir, run)
    if as_json:
        echo_json(detail)
        return
    saga, now = detail.saga, utc_now()
    console = Console()
    console.print(f"[bold]Saga {saga.saga_id}[/]: {_status_text(saga.status)}")
    console.print(f"  definition {escape(saga.definition)}")
    console.print(f"  step       {saga.step} ({saga.step_name}), attempts {saga.attempts}")
    age = duration_text(now - saga.created_at)
    console.print(f"  begun      {saga.created_at.isoformat(timespec='seconds')} ({age} ago)")
    console.print(f"  changed    {saga.updated_at.isoformat(timespec='seconds')}")
    console.print(f"  deadline   {_deadline_text(saga.deadline, now) or 'none'}")
    console.print(f"  reason     {escape(saga.reason or '')}")
    console.print(f"  data       {escape(json.dumps(saga.data, sort_keys=True))}")
    items = [
        Item(
            [
                str(record.seq),
                record.at.isoformat(timespec="milliseconds"),
                escape(record.entry.event),
                escape(record.entry.outcome),
                f"{record.entry.from_status or '·'} → {record.entry.to_status}",
                str(record.entry.step),
            ],
            note=record.entry.note or "",
        )
        for record in detail.history
    ]
    console.print(listing("History", HISTORY_FIELDS, items, console.width))
    console.print(listing("Timeline", TIMELINE_FIELDS, timeline_items(detail), console.width))


def timeline_items(detail: SagaDetail) -> list[Item]:
    """The saga's timeline as the admin API gives it, one event a line, what it says under."""
    items = []
    for event in detail.timeline:
        where = "" if event.partition is None else f"{event.partition}/{event.offset}"
        said = [event.detail, f"by {event.actor}" if event.actor else None, event.reason]
        if event.message_id:
            said.append(f"message {event.message_id}")
        items.append(
            Item(
                [
                    event.at.isoformat(timespec="milliseconds"),
                    event.service,
                    event.kind,
                    escape(event.topic or ""),
                    where,
                    escape(event.step or ""),
                ],
                note="; ".join(part for part in said if part),
            )
        )
    return items


Reason = Annotated[
    str,
    typer.Option("--reason", help="Why: recorded in the audit trail with who acted."),
]


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@sagas_app.command("retry")
def retry_command(
    saga_id: SagaId,
    reason: Reason = "retried from the command line",
    data_dir: DataDir = None,
) -> None:
    """Send a PARKED saga's compensation (or outcome) again, with its attempts counted
    afresh."""

    async def run(operations: SagaOperations) -> SagaView:
        return (await operations.retry(saga_id, actor=_actor(), reason=reason)).saga

    saga = _run(data_dir, run)
    deadline = _deadline_text(saga.deadline, utc_now())
    Console().print(
        f"Saga {saga.saga_id} retried: {_status_text(saga.status)} at {saga.step_name}, "
        f"its unacknowledged message sent again; acknowledgement due {deadline}."
    )


@sagas_app.command("cancel")
def cancel_command(saga_id: SagaId, reason: Reason, data_dir: DataDir = None) -> None:
    """Cancel a RUNNING saga before its pivot: its done steps are compensated now."""

    async def run(operations: SagaOperations) -> SagaView:
        return (await operations.cancel(saga_id, actor=_actor(), reason=reason)).saga

    saga = _run(data_dir, run)
    Console().print(
        f"Saga {saga.saga_id} cancelled: {_status_text(saga.status)}, undoing "
        f"{saga.step_name}; it ends CANCELLED once its compensations are acknowledged."
    )


def parse_moment(text: str) -> datetime:
    """An ISO date or date and time (UTC unless it says otherwise); a usage error else."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date: use 2026-11-01 or 2026-11-01T12:00:00"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@sagas_app.command("export")
def export_command(
    finished_before: Annotated[
        datetime,
        typer.Option(
            parser=parse_moment,
            metavar="DATE",
            help="Sagas that finished (COMPLETED or CANCELLED) before this date or time.",
        ),
    ],
    output: Annotated[
        Path | None, typer.Option(help="The JSON Lines file to write; standard output if omitted.")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Write the sagas finished before DATE, each with its history, as JSON Lines, for
    whoever must keep them past ORDERSAGA_SAGA_RETENTION (after which they are pruned)."""

    async def run(operations: SagaOperations) -> int:
        written = 0
        lines = export_finished_sagas(
            operations.engine, saga_instances, saga_history, finished_before
        )
        with output.open("w") if output else contextlib.nullcontext(sys.stdout) as out:
            async for line in lines:
                out.write(line + "\n")
                written += 1
        return written

    written = _run(data_dir, run)
    if output is not None:
        Console().print(f"{written} sagas written to {output}")


def duration_text(duration: timedelta) -> str:
    """A duration in its two largest units: ``2d 3h``, ``5m 12s``, ``0s``."""
    seconds = max(int(duration.total_seconds()), 0)
    parts: list[str] = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2])


def _deadline_text(deadline: datetime | None, now: datetime) -> str:
    if deadline is None:
        return ""
    if deadline >= now:
        return f"in {duration_text(deadline - now)}"
    return f"{duration_text(now - deadline)} overdue"


def _status_text(status: SagaStatus) -> str:
    colour = {
        SagaStatus.COMPLETED: "green",
        SagaStatus.CANCELLED: "yellow",
        SagaStatus.PARKED: "bold red",
    }.get(status, "cyan")
    return f"[{colour}]{status}[/]"


def _run(data_dir: Path | None, action: Callable[[SagaOperations], Awaitable[T]]) -> T:
    """Run ``action`` on the orchestrator's database; an error a user can fix exits."""
    settings = Settings()
    url = service("orchestrator").database_url(settings)
    if data_dir is not None:
        path = database_path(data_dir, "orchestrator")
        if not path.exists():
            fail(f"no embedded system's orchestrator database at {path}", USAGE)
        url = sqlite_url(path)

    async def run() -> T:
        engine = make_engine(url)
        try:
            return await action(
                SagaOperations(Transactions(engine, outbox), place_order_runner(settings))
            )
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except (UnknownSaga, ActionRefused, UnknownSagaVersion) as error:
        fail(str(error), FAILED)
    except BadQuery as error:
        fail(str(error), USAGE)
    except (OSError, DBAPIError) as error:
        database_failed("orchestrator", url, error)

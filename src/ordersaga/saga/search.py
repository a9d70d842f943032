"""Finding sagas: the filters an operator gives, as one query on ``saga_instances``.

Shared by the admin API and ``ordersaga sagas list``. Pages are addressed by an opaque
cursor (the position of the page's first saga in the sorted result).
"""

import base64
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Integer, Table, and_, cast, func, select
from sqlalchemy.dialects.postgresql import JSON as PostgresJson
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from ordersaga.saga.state import SagaStatus

SORT_KEYS: Final = ("created_at", "updated_at", "state", "step", "deadline")
MAX_LIMIT: Final = 500

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_AGE = re.compile(r"(\d+)([smhd])")


class BadQuery(ValueError):
    """A filter that cannot be understood; names the ``parameter`` and says why."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


def parse_age(text: str, parameter: str = "age") -> timedelta:
    """``30s``, ``5m``, ``2h`` or ``1d`` as a duration; :class:`BadQuery` for anything else."""
    match = _AGE.fullmatch(text.strip().lower())
    if match is None:
        raise BadQuery(
            parameter,
            f"{text!r} is not an age: use a whole number and a unit, s, m, h or d "
            "(30s, 5m, 2h, 1d)",
        )
    number, unit = match.groups()
    return timedelta(**{_UNITS[unit]: int(number)})


def parse_state(text: str, parameter: str = "state") -> SagaStatus:
    """A saga state by its name, in any case; :class:`BadQuery` naming the states else."""
    try:
        return SagaStatus(text.strip().upper())
    except ValueError:
        names = ", ".join(SagaStatus)
        raise BadQuery(parameter, f"{text!r} is not a saga state: one of {names}") from None


def _cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"at:{position}".encode()).decode()


def _position(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        if not text.startswith("at:"):
            raise ValueError(text)
        position = int(text[3:])
    except ValueError:
        raise BadQuery("cursor", f"{cursor!r} is not a cursor this API gave out") from None
    if position < 0:
        raise BadQuery("cursor", f"{cursor!r} is not a cursor this API gave out")
    return position


@dataclass(frozen=True)
class SagaQuery:
    """What to find: every filter given must hold. ``steps`` are step indexes (a step's
    name is resolved by whoever knows the definitions)."""

    order_id: str | None = None
    user_id: int | None = None
    state: SagaStatus | None = None
    steps: Collection[int] | None = None
    older_than: timedelta | None = None
    newer_than: timedelta | None = None
    parked: bool | None = None
    reason: str | None = None
    sort: str = "created_at"
    descending: bool = True
    limit: int = 50
    offset: int = 0

    @classmethod
    def parse(
        cls,
        *,
        state: str | None = None,
        older_than: str | None = None,
        newer_than: str | None = None,
        cursor: str | None = None,
        sort: str = "created_at",
        limit: int = 50,
        **filters: Any,
    ) -> "SagaQuery":
        """A query from text parameters; :class:`BadQuery` names the one that is wrong."""
        if sort not in SORT_KEYS:
            raise BadQuery("sort", f"{sort!r} is not a sort key: one of {', '.join(SORT_KEYS)}")
        if not 1 <= limit <= MAX_LIMIT:
            raise BadQuery("limit", f"{limit} is not between 1 and {MAX_LIMIT}")
        return cls(
            state=parse_state(state) if state else None,
            older_than=parse_age(older_than, "older_than") if older_than else None,
            newer_than=parse_age(newer_than, "newer_than") if newer_than else None,
            offset=_position(cursor) if cursor else 0,
            sort=sort,
            limit=limit,
            **filters,
        )

    def next_cursor(self, total: int) -> str | None:
        """The cursor of the page after this one; None when this one is the last."""
        following = self.offset + self.limit
        return _cursor(following) if following < total else None


@dataclass(frozen=True)
class Found:
    """A page of rows of ``saga_instances`` and how many match in all."""

    rows: list[Any]
    total: int


def _user_id(table: Table, dialect: str) -> ColumnElement[Any]:
    """``data.userID`` as a number; ``data`` is JSON text (portable across databases)."""
    if dialect == "sqlite":
        return func.json_extract(table.c.data, "$.userID")
    if dialect == "postgresql":
        return cast(cast(table.c.data, PostgresJson)["userID"].astext, Integer)
    return cast(func.json_unquote(func.json_extract(table.c.data, "$.userID")), Integer)


def conditions(
    table: Table, saga_type: str, query: SagaQuery, now: datetime, dialect: str
) -> list[ColumnElement[bool]]:
    """The ``WHERE`` of ``query`` on sagas of ``saga_type``."""
    c = table.c
    found: list[ColumnElement[bool]] = [c.saga_type == saga_type]
    if query.order_id is not None:
        found.append(c.saga_id == query.order_id.strip().lower())
    if query.user_id is not None:
        found.append(_user_id(table, dialect) == query.user_id)
    if query.state is not None:
        found.append(c.status == query.state.value)
    if query.steps is not None:
        found.append(c.step.in_(sorted(query.steps)))
    if query.older_than is not None:
        found.append(c.created_at <= now - query.older_than)
    if query.newer_than is not None:
        found.append(c.created_at >= now - query.newer_than)
    if query.parked is True:
        found.append(c.status == SagaStatus.PARKED.value)
    elif query.parked is False:
        found.append(c.status != SagaStatus.PARKED.value)
    if query.reason:
        pattern = f"%{_escape_like(query.reason.lower())}%"
        found.append(func.lower(c.reason).like(pattern, escape="\\"))
    return found


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search(
    conn: AsyncConnection, table: Table, saga_type: str, query: SagaQuery, now: datetime
) -> Found:
    """The page of sagas ``query`` asks for, and how many match in all."""
    where = and_(*conditions(table, saga_type, query, now, conn.dialect.name))
    total = await conn.scalar(select(func.count()).select_from(table).where(where))
    column = table.c[_COLUMNS[query.sort]]
    key = column.desc() if query.descending else column.asc()
    tie = table.c.saga_id.desc() if query.descending else table.c.saga_id.asc()
    statement = (
        select(table).where(where).order_by(key, tie).limit(query.limit).offset(query.offset)
    )
    rows = (await conn.execute(statement)).mappings().all()
    return Found(list(rows), int(total or 0))


_COLUMNS = {
    "created_at": "created_at",
    "updated_at": "updated_at",
    "state": "status",
    "step": "step",
    "deadline": "deadline",
}

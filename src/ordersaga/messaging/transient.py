"""Which failures are the surroundings' fault (retry) and which the message's (dead-letter)."""

from sqlalchemy.exc import DBAPIError, OperationalError

# SQLSTATEs of a database going away or coming back, and of a transaction that lost a
# race and may simply run again. asyncpg reports some of them (57P03, "the database
# system is shutting down", while PostgreSQL restarts) as a plain DBAPIError, which
# would otherwise count as the message's fault and dead-letter it.
_TRANSIENT_SQLSTATE_CLASSES = ("08",)  # connection exception
_TRANSIENT_SQLSTATES = {"57P01", "57P02", "57P03", "40001", "40P01"}


def _causes(error: BaseException) -> list[BaseException]:
    """``error``, the driver's exception under it and what caused those."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or any(current is s for s in seen) or len(seen) > 10:
            continue
        seen.append(current)
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return seen


def _transient_sqlstate(error: BaseException) -> bool:
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if not isinstance(state, str):
        return False
    return state in _TRANSIENT_SQLSTATES or state.startswith(_TRANSIENT_SQLSTATE_CLASSES)


def is_transient(error: BaseException) -> bool:
    """A fault of the surroundings (database or broker away), not of the message."""
    if isinstance(error, OperationalError):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return any(
        isinstance(cause, ConnectionError | TimeoutError | OSError) or _transient_sqlstate(cause)
        for cause in _causes(error)
    )

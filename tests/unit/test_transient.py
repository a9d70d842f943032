"""Which failures the consumer loop retries (transient) and which it dead-letters."""

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from ordersaga.messaging.transient import is_transient


class DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def wrapped(cls: type[DBAPIError], original: Exception) -> DBAPIError:
    return cls("SELECT 1", {}, original)


def test_a_database_that_is_away_or_shutting_down_is_transient() -> None:
    assert is_transient(wrapped(OperationalError, Exception("connection refused")))
    assert is_transient(ConnectionRefusedError())
    assert is_transient(wrapped(DBAPIError, DriverError("57P01")))  # admin shutdown
    assert is_transient(wrapped(DBAPIError, DriverError("40001")))  # serialization failure


def test_a_broken_constraint_or_a_bug_is_not_transient() -> None:
    assert not is_transient(wrapped(IntegrityError, DriverError("23514")))
    assert not is_transient(ValueError("a bug"))

"""Which failures are faults of the surroundings and which are unexpected.

Both are retried by the consumer loop (only the message's own fault makes poison); the
classification decides how a failure is reported: a warning, or an error with its
traceback for someone to look at.
"""

from collections.abc import Callable

import aiokafka.errors
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from ordersaga.messaging.transient import is_transient
from tests.fault_kinds import SURROUNDINGS, UNEXPECTED


class DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def wrapped(cls: type[DBAPIError], original: Exception) -> DBAPIError:
    return cls("SELECT 1", {}, original)


@pytest.mark.parametrize("make", SURROUNDINGS.values(), ids=SURROUNDINGS.keys())
def test_a_fault_of_the_surroundings_is_transient(make: Callable[[], Exception]) -> None:
    assert is_transient(make())


@pytest.mark.parametrize("make", UNEXPECTED.values(), ids=UNEXPECTED.keys())
def test_a_bug_or_a_broken_constraint_is_not(make: Callable[[], Exception]) -> None:
    assert not is_transient(make())


def test_a_database_that_is_away_or_shutting_down_is_transient() -> None:
    assert is_transient(wrapped(OperationalError, Exception("connection refused")))
    assert is_transient(ConnectionRefusedError())
    assert is_transient(wrapped(DBAPIError, DriverError("57P01")))  # admin shutdown
    assert is_transient(wrapped(DBAPIError, DriverError("40001")))  # serialization failure


@pytest.mark.parametrize("sqlstate", ["53100", "53400", "57000", "08006", "58030", "40003"])
def test_whole_classes_of_sqlstates_are_transient(sqlstate: str) -> None:
    assert is_transient(wrapped(DBAPIError, DriverError(sqlstate)))


@pytest.mark.parametrize("sqlstate", ["23514", "23505", "22003", "42P01", "XX000", "55006"])
def test_other_sqlstates_are_not(sqlstate: str) -> None:
    assert not is_transient(wrapped(DBAPIError, DriverError(sqlstate)))


def test_a_mysql_error_number_counts_only_from_a_mysql_driver() -> None:
    import pymysql.err

    assert not is_transient(wrapped(DBAPIError, pymysql.err.IntegrityError(1062, "Duplicate")))
    assert not is_transient(wrapped(DBAPIError, ValueError(1205, "not from a driver")))


def test_a_kafka_error_is_transient_when_it_says_it_may_be_retried() -> None:
    assert is_transient(aiokafka.errors.KafkaConnectionError("broker away"))
    assert is_transient(aiokafka.errors.NotLeaderForPartitionError())
    assert not is_transient(aiokafka.errors.UnsupportedVersionError())


def test_a_broken_constraint_or_a_bug_is_not_transient() -> None:
    assert not is_transient(wrapped(IntegrityError, DriverError("23514")))
    assert not is_transient(ValueError("a bug"))

"""Fixtures for the tests of the real stack (Kafka, PostgreSQL, MariaDB, one process per
service replica). `make test` starts the infrastructure before running them. They reach
Kafka on its SASL_SSL listener, each replica as its own principal (secure_kafka.py)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.realstack.secure_kafka import require_secure_listener
from tests.realstack.stack import Stack

require_secure_listener()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(logs=tmp_path)
    stack.prepare()
    try:
        yield stack
    finally:
        try:
            stack.stop()
        finally:
            stack.drop()

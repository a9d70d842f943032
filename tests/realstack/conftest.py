"""Fixtures for the tests of the real stack (Kafka, PostgreSQL, MariaDB, one process per
service replica). `make test` starts the infrastructure before running them."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.realstack.stack import Stack


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

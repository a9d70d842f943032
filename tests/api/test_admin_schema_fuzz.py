"""The admin API against its own OpenAPI schema, fuzzed by schemathesis, on an
orchestrator database with a few sagas and an in-process broker.

No answer may be a 5xx, and every answer must be documented: status, content type and
body. Not checked: that every schema-valid request is accepted (a valid-looking saga id
names no saga; a valid-looking retry finds the saga in no state for it).
"""

import asyncio
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from ordersaga.config import Settings
from ordersaga.contracts import topics
from ordersaga.db.engine import create_schema, sqlite_url
from ordersaga.messaging.dead_letters import EMBEDDED_LIMITS
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.runtime.admin import admin_app
from ordersaga.services.orchestrator.tables import metadata, outbox
from ordersaga.services.orchestrator.wiring import place_order_runner
from tests.auth_support import operator_headers, verifier
from tests.saga_fixtures import an_order, deliver, reserved

RUNNER = place_order_runner(Settings())
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.negative_data_rejection,
]


def _app(url: str, broker: InProcessBroker) -> FastAPI:
    # schemathesis calls the app on an event loop of its own: without a pool, no
    # connection outlives the loop that opened it.
    engine = create_async_engine(url, poolclass=NullPool)
    return admin_app(
        Transactions(engine, outbox), RUNNER, broker, EMBEDDED_LIMITS, verifier=verifier()
    )


schema = schemathesis.openapi.from_dict(
    _app("sqlite+aiosqlite://", InProcessBroker()).openapi()
)


async def _prepare(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    await create_schema(engine, metadata)
    for _ in range(3):
        order = an_order()
        await deliver(engine, RUNNER, topics.ORDER_CREATED, order)
        await deliver(engine, RUNNER, topics.PRODUCT_RESERVED, reserved(order))
    await engine.dispose()


@pytest.fixture(scope="module")
def orchestrator_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = sqlite_url(Path(tmp_path_factory.mktemp("admin")) / "orchestrator.sqlite3")
    asyncio.run(_prepare(url))
    return url


@pytest.fixture
def app(orchestrator_url: str) -> FastAPI:
    return _app(orchestrator_url, InProcessBroker())


@schema.parametrize()
@settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_admin_api_conforms_to_its_schema(app: FastAPI, case: schemathesis.Case[Any]) -> None:
    # An operator's token: every operation is reached past authentication (which
    # tests/api/test_owasp_admin.py covers).
    case.call_and_validate(app=app, checks=CHECKS, headers=operator_headers())

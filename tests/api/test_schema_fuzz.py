"""The order API against its own OpenAPI schema, fuzzed by schemathesis.

Every operation gets schema-valid and schema-invalid requests; no answer may be a 5xx,
and every answer must be documented: its status, content type, headers and body.
Not checked: that every schema-valid request is accepted, since a valid-looking body
can still name a product that is not in the catalog or reuse an Idempotency-Key.
"""

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from ordersaga.config import Settings
from ordersaga.services.order.api import create_app
from tests.auth_support import operator_headers, verifier
from tests.support import order_units

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.negative_data_rejection,
    schemathesis.checks.missing_required_header,
    schemathesis.checks.unsupported_method,
    schemathesis.checks.allow_header_conformance,
]


def _no_wake() -> None:
    """No relay runs here; the outbox just fills."""


def _schema_document() -> dict[str, Any]:
    # Building the document touches no database, so an engine that is never used will do.
    return create_app(
        order_units(create_async_engine("sqlite+aiosqlite://"), _no_wake),
        Settings(),
        verifier=verifier(),
    ).openapi()


schema = schemathesis.openapi.from_dict(_schema_document())


@pytest.fixture
def app(db_url: str) -> FastAPI:
    # schemathesis calls the app on an event loop of its own: without a pool, no
    # connection outlives the loop that opened it, and there is nothing to dispose of.
    return create_app(
        order_units(create_async_engine(db_url, poolclass=NullPool), _no_wake),
        Settings(),
        verifier=verifier(),
    )


@schema.parametrize()
@settings(
    max_examples=50,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(app: FastAPI, case: schemathesis.Case[Any]) -> None:
    # An operator's token: every operation is reached past authentication (which
    # tests/api/test_owasp.py covers).
    case.call_and_validate(app=app, checks=CHECKS, headers=operator_headers())

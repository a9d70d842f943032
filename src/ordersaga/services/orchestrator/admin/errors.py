"""How the admin API answers what cannot be done: 401, 403, 404, 409, 422 and 503, each
with a ``detail`` that says what is wrong (a bad parameter is named)."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ordersaga.messaging.dead_letters import NoSuchRecord, NotADeadLetter, UnknownDeadLetterTopic
from ordersaga.saga.search import BadQuery
from ordersaga.services.orchestrator.admin.operator import (
    NotAnOperator,
    NotAuthenticated,
    VerificationUnavailable,
)
from ordersaga.services.orchestrator.operations import ActionRefused, UnknownSaga

log = logging.getLogger(__name__)


def _answer(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _parameter(location: tuple[int | str, ...]) -> str:
    # ("query", "limit") → "limit"; ("body", "reason") → "reason"; ("body",) → "body"
    named = [str(part) for part in location[1:]] or [str(part) for part in location]
    return ".".join(named)


async def _invalid_request(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = [
        {"parameter": _parameter(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))}
        for e in error.errors()
    ]
    detail = "; ".join(f"{p['parameter']}: {p['message']}" for p in problems)
    return JSONResponse({"detail": detail, "errors": problems}, status_code=422)


async def _bad_query(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, BadQuery)
    problems = [{"parameter": error.parameter, "message": error.message}]
    return JSONResponse({"detail": str(error), "errors": problems}, status_code=422)


async def _unknown_topic(_: Request, error: Exception) -> JSONResponse:
    problems = [{"parameter": "topic", "message": str(error)}]
    return JSONResponse({"detail": f"topic: {error}", "errors": problems}, status_code=422)


_UNPARSABLE_BODY = "There was an error parsing the body"  # FastAPI's words for it


async def _http(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    if error.status_code == 400 and error.detail == _UNPARSABLE_BODY:
        message = "malformed JSON: cannot be parsed as UTF-8 JSON"
        problems = [{"parameter": "body", "message": message}]
        return JSONResponse({"detail": f"body: {message}", "errors": problems}, status_code=422)
    response = _answer(error.status_code, str(error.detail))
    response.headers.update(error.headers or {})
    return response


async def _not_found(_: Request, error: Exception) -> JSONResponse:
    return _answer(404, str(error))


async def _conflict(_: Request, error: Exception) -> JSONResponse:
    return _answer(409, str(error))


async def _not_authenticated(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, NotAuthenticated)
    response = _answer(401, error.reason)
    response.headers["WWW-Authenticate"] = error.challenge
    return response


async def _not_an_operator(_: Request, error: Exception) -> JSONResponse:
    return _answer(403, "the admin API is for operators: this token has no operator role")


async def _verification_unavailable(_: Request, error: Exception) -> JSONResponse:
    log.warning("cannot verify tokens: %s", error.__cause__ or error)
    response = _answer(503, "tokens cannot be verified right now; retry shortly")
    response.headers["Retry-After"] = "1"
    return response


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(NotAuthenticated, _not_authenticated)
    app.add_exception_handler(NotAnOperator, _not_an_operator)
    app.add_exception_handler(VerificationUnavailable, _verification_unavailable)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(BadQuery, _bad_query)
    app.add_exception_handler(UnknownDeadLetterTopic, _unknown_topic)
    app.add_exception_handler(UnknownSaga, _not_found)
    app.add_exception_handler(NoSuchRecord, _not_found)
    app.add_exception_handler(ActionRefused, _conflict)
    app.add_exception_handler(NotADeadLetter, _conflict)

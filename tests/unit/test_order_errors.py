"""Turning validation errors into sentences that name the field."""

from typing import Any

import pytest

from ordersaga.services.order.errors import field_errors, field_name, problem


@pytest.mark.parametrize(
    ("loc", "name"),
    [
        (("body", "quantity"), "quantity"),
        (("query", "userID"), "userID"),
        (("path", "orderID"), "orderID"),
        (("header", "Idempotency-Key"), "Idempotency-Key"),
        (("body",), "body"),
        (("body", 17), "body"),
        ((), "body"),
    ],
)
def test_field_name(loc: tuple[Any, ...], name: str) -> None:
    assert field_name(loc) == name


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ({"type": "missing"}, "is required"),
        ({"type": "int_type", "input": True}, "must be an integer, not true"),
        ({"type": "int_type", "input": "2"}, 'must be an integer, not "2"'),
        ({"type": "int_type", "input": None}, "must be an integer, not null"),
        ({"type": "int_type", "input": [1]}, "must be an integer, not an array"),
        ({"type": "int_type", "input": {}}, "must be an integer, not an object"),
        ({"type": "greater_than", "ctx": {"gt": 0}}, "must be greater than 0"),
        ({"type": "greater_than_equal", "ctx": {"ge": 1}}, "must be greater than or equal to 1"),
        ({"type": "less_than_equal", "ctx": {"le": 100}}, "must be less than or equal to 100"),
        ({"type": "enum", "ctx": {"expected": "'A' or 'B'"}}, "must be one of 'A' or 'B'"),
        ({"type": "model_attributes_type", "input": [1]}, "must be a JSON object, not an array"),
        (
            {"type": "json_invalid", "loc": ("body", 5), "ctx": {"error": "Expecting value"}},
            "malformed JSON at character 5: Expecting value",
        ),
        (
            {"type": "string_too_long", "msg": "String should have at most 3 characters"},
            "should have at most 3 characters",
        ),
    ],
)
def test_problem_in_words(error: dict[str, Any], message: str) -> None:
    assert problem(error) == message


def test_long_input_is_shortened() -> None:
    message = problem({"type": "int_type", "input": "x" * 500})

    assert len(message) < 80
    assert message.endswith('..."') or message.endswith("...")


def test_unknown_field_lists_accepted_fields() -> None:
    [error] = field_errors(
        [{"type": "extra_forbidden", "loc": ("body", "price")}], ["userID", "productID"]
    )

    assert error.field == "price"
    assert error.message == "is not an accepted field; accepted fields: userID, productID"


def test_a_field_the_server_sets_says_so() -> None:
    [error] = field_errors(
        [{"type": "extra_forbidden", "loc": ("body", "amount")}], ["userID", "productID"]
    )

    assert error.field == "amount"
    assert error.message == (
        "is not an accepted field (the server sets it); accepted fields: userID, productID"
    )


def test_missing_body_says_what_to_send() -> None:
    [error] = field_errors([{"type": "missing", "loc": ("body",)}], ["userID", "productID"])

    assert error.field == "body"
    assert error.message == "is required: send a JSON object with userID, productID"

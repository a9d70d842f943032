"""Reading messages: tolerant of fields it does not know, strict about the ones it does."""

import json
from decimal import Decimal
from uuid import uuid4

import pytest

from ordersaga.contracts import topics
from ordersaga.contracts.codec import NewerSchema, PoisonMessage, check_schema_version, decode
from ordersaga.contracts.messages import OrderUpdated

ORDER = {
    "orderID": str(uuid4()),
    "userID": 1,
    "productID": 2,
    "quantity": 1,
    "amount": 30,
    "status": "ORDER_COMPLETED",
}


def value(**changes: object) -> bytes:
    return json.dumps({**ORDER, **changes}).encode()


def test_fields_a_reader_does_not_know_are_ignored() -> None:
    message = decode(topics.ORDER_UPDATED, value(currency="EUR", lines=[{"sku": 1}]))
    assert isinstance(message, OrderUpdated)
    assert message.amount == Decimal("30.00")
    assert not hasattr(message, "currency")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": -1}, "amount"),
        ({"amount": 10**10}, "amount"),
        ({"quantity": 2**31}, "quantity"),
        ({"userID": 0}, "userID"),
        ({"status": "ORDER_SHIPPED"}, "status"),
    ],
)
def test_fields_a_reader_knows_are_checked(changes: dict[str, object], field: str) -> None:
    with pytest.raises(PoisonMessage, match=field):
        decode(topics.ORDER_UPDATED, value(**changes))


@pytest.mark.parametrize("header", [None, "", "1"])
def test_a_reader_reads_its_own_version_and_a_message_without_one(header: str | None) -> None:
    check_schema_version(header, "1")


def test_a_newer_version_is_for_a_newer_reader_not_poison() -> None:
    with pytest.raises(NewerSchema) as newer:
        check_schema_version("3", "2")
    assert (newer.value.version, newer.value.readable) == (3, 2)
    check_schema_version("1", "2")


@pytest.mark.parametrize("header", ["one", "0", "-1", "1.5", "²"])
def test_a_version_that_is_not_one_is_poison(header: str) -> None:
    with pytest.raises(PoisonMessage, match="schema-version"):
        check_schema_version(header, "1")

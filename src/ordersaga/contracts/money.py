"""Money: ``Decimal`` in code, a JSON number on the wire, two decimal places everywhere."""

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated

from pydantic import AfterValidator, PlainSerializer

CENT = Decimal("0.01")


def to_money(value: Decimal | int | str) -> Decimal:
    """Quantise to cents; refuses more precision than a cent rather than rounding it away."""
    amount = Decimal(value)
    quantised = amount.quantize(CENT, rounding=ROUND_HALF_EVEN)
    if quantised != amount:
        raise ValueError(f"amount {value} has more than two decimal places")
    return quantised


def _json_number(value: Decimal) -> float:
    # A cent-quantised Decimal below 10^13 survives the float's shortest repr exactly.
    return float(value)


Money = Annotated[
    Decimal,
    AfterValidator(to_money),
    PlainSerializer(_json_number, return_type=float, when_used="json"),
]

"""Who a token speaks for: a customer's user id, an operator's role."""

import pytest

from ordersaga.auth.principal import Principal


@pytest.mark.parametrize(
    ("sub", "user"),
    [
        ("1", 1),
        ("2147483647", 2147483647),
        ("0", None),
        ("07", None),
        ("-1", None),
        ("alice", None),
        ("\u0661", None),  # ARABIC-INDIC DIGIT ONE: a digit, not ASCII
        ("", None),
    ],
)
def test_only_a_plain_positive_integer_subject_is_a_user(sub: str, user: int | None) -> None:
    assert Principal(sub).user_id == user


@pytest.mark.parametrize(
    ("roles", "operator"),
    [
        (["operator"], True),
        ("operator other", True),
        ([], False),
        (None, False),
        ("operators", False),
        ([1, "operator"], True),
        ({"operator": True}, False),
    ],
)
def test_roles_from_a_list_or_a_space_separated_string(roles: object, operator: bool) -> None:
    assert Principal.of_claims({"sub": "1", "roles": roles}).is_operator is operator

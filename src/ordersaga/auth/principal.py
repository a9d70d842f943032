"""Who a verified token speaks for: its subject and its roles."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

OPERATOR = "operator"
"""The role that reads every order and alone may use the admin API."""

ROLES_CLAIM = "roles"
"""The claim that lists a token's roles: ``"roles": ["operator"]``."""

ANONYMOUS = "anonymous"
"""The subject of every request when authentication is disabled."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request: ``subject`` is the token's ``sub``; a customer's is its
    user id (``"1"``)."""

    subject: str
    roles: frozenset[str] = frozenset()

    @property
    def is_operator(self) -> bool:
        return OPERATOR in self.roles

    @property
    def user_id(self) -> int | None:
        """The customer's user id: ``sub`` when it is a positive integer written plainly
        (``"7"``, not ``"07"``), else ``None``."""
        if not self.subject.isascii() or not self.subject.isdigit():
            return None
        value = int(self.subject)
        return value if value > 0 and str(value) == self.subject else None

    @classmethod
    def of_claims(cls, claims: Mapping[str, Any]) -> "Principal":
        """The principal of verified ``claims``; ``roles`` may be a list or a
        space-separated string (as some identity providers write scopes)."""
        raw = claims.get(ROLES_CLAIM) or ()
        roles: Iterable[object] = raw.split() if isinstance(raw, str) else raw
        if not isinstance(roles, list | tuple):
            roles = ()
        return cls(str(claims["sub"]), frozenset(r for r in roles if isinstance(r, str)))


UNAUTHENTICATED_OPERATOR = Principal(ANONYMOUS, frozenset({OPERATOR}))
"""Whoever calls when authentication is disabled (``ORDERSAGA_AUTH=disabled``): allowed
everything, as before there were tokens."""

"""Who acts through the admin API: the one place that decides it.

Every route that reads or acts asks for :data:`OperatorDep`. Today the API listens on
the loopback interface only and whoever reaches it is the local operator; an
authenticating dependency replaces :func:`current_operator` alone.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

LOCAL = "local"


@dataclass(frozen=True, slots=True)
class Operator:
    """Whoever acts: the ``subject`` the audit trail records."""

    subject: str


async def current_operator() -> Operator:
    """The operator of this request: ``local`` (the API is on loopback only)."""
    return Operator(LOCAL)


OperatorDep = Annotated[Operator, Depends(current_operator)]

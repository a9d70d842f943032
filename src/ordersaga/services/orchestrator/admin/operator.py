"""Who acts through the admin API: the one place that decides it.

Every route that reads or acts asks for :data:`OperatorDep`: a bearer token with the
``operator`` role (401 without a valid token, 403 with a token that lacks the role),
whose subject the audit trail records. With authentication disabled the API listens on
a loopback address only, and whoever reaches it is the ``local`` operator.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ordersaga.auth.challenge import NotAuthenticated as BaseNotAuthenticated
from ordersaga.auth.jwks import KeyUnavailable
from ordersaga.auth.principal import OPERATOR
from ordersaga.auth.verify import InvalidToken, TokenVerifier

LOCAL = "local"

MISSING_TOKEN = (
    "the admin API needs an operator's bearer token: send Authorization: Bearer <token> "
    "(`ordersaga token --subject NAME --role operator` mints one)"
)


@dataclass(frozen=True, slots=True)
class Operator:
    """Whoever acts: the ``subject`` the audit trail records."""

    subject: str


class NotAuthenticated(BaseNotAuthenticated):
    """No token, or one the admin API does not accept (its realm: ordersaga-admin)."""

    def __init__(self, reason: str, *, invalid: bool) -> None:
        super().__init__(reason, invalid=invalid, realm="ordersaga-admin")


class NotAnOperator(Exception):
    """A valid token without the operator role; answered 403."""


class VerificationUnavailable(Exception):
    """The keys that verify tokens cannot be had right now; answered 503."""


bearer = HTTPBearer(
    auto_error=False,
    description="A JWT with `roles: [operator]`: `ordersaga token --subject NAME --role "
    "operator`, or the identity provider's.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def current_operator(request: Request, credentials: Credentials) -> Operator:
    """The operator of this request: the subject of its operator token, or ``local``
    when authentication is disabled (the API is then on loopback only)."""
    verifier: TokenVerifier | None = request.app.state.admin_verifier
    if verifier is None:
        return Operator(LOCAL)
    if credentials is None:
        raise NotAuthenticated(MISSING_TOKEN, invalid=False)
    try:
        principal = await verifier.verify(credentials.credentials)
    except InvalidToken as error:
        raise NotAuthenticated(str(error), invalid=True) from error
    except KeyUnavailable as error:
        raise VerificationUnavailable() from error
    if OPERATOR not in principal.roles:
        raise NotAnOperator()
    return Operator(principal.subject)


OperatorDep = Annotated[Operator, Depends(current_operator)]

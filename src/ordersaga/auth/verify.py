"""Verifying a bearer token: signature, algorithm, issuer, audience and expiry.

Only asymmetric algorithms are accepted (RS256, ES256), and the algorithm must be the
one the key is for: ``alg: none`` and an HS256 token "signed" with the public key as
its secret are refused before any key is used. PyJWT does the cryptography.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from ordersaga.auth.jwks import KeySource
from ordersaga.auth.principal import Principal

ALGORITHMS = ("RS256", "ES256")
"""The algorithms a token may be signed with; never ``none``, never HS*."""

REQUIRED_CLAIMS = ("exp", "iat", "sub", "iss", "aud")

REMEMBER_FOR = 60.0
"""Seconds a verified token is taken as verified without checking its signature again
(never past its expiry): a client sends the same token with every request, and an ES256
verification costs more than the rest of placing an order. A key removed from the JWKS
stops being honoured within this time, as the JWKS is read again within it too."""
REMEMBERED_TOKENS = 10_000


class InvalidToken(Exception):
    """The token is not accepted; the message says why, naming nothing secret."""


@dataclass(frozen=True, slots=True)
class Audience:
    """What a token must say to be for this API: who issued it and for whom."""

    issuer: str
    audience: str
    leeway: float = 30.0
    """Seconds of clock skew allowed on ``exp``, ``nbf`` and ``iat``."""


_REASONS: tuple[tuple[type[jwt.InvalidTokenError], str], ...] = (
    (jwt.ExpiredSignatureError, "token has expired"),
    (jwt.ImmatureSignatureError, "token is not valid yet"),
    (jwt.InvalidAudienceError, "token is not meant for this API (audience)"),
    (jwt.InvalidIssuerError, "token was not issued by a trusted issuer"),
    (jwt.InvalidSignatureError, "token signature does not verify"),
    (jwt.InvalidAlgorithmError, "token algorithm is not accepted"),
)


def reason(error: jwt.InvalidTokenError) -> str:
    """Why PyJWT refused a token, in words a client can act on."""
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"token has no {error.claim} claim"
    for kind, words in _REASONS:
        if isinstance(error, kind):
            return words
    return "token is malformed"


class TokenVerifier:
    """Verifies tokens against the keys of ``keys``, for ``audience``."""

    def __init__(
        self,
        keys: KeySource,
        audience: Audience,
        algorithms: tuple[str, ...] = ALGORITHMS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        unsafe = [a for a in algorithms if a not in ALGORITHMS]
        if unsafe:
            raise ValueError(f"algorithms {unsafe} are not accepted; only {list(ALGORITHMS)}")
        self.keys = keys
        self.audience = audience
        self.algorithms = algorithms
        self._clock = clock
        self._verified: dict[str, tuple[Principal, float]] = {}

    async def verify(self, token: str) -> Principal:
        """The principal ``token`` speaks for; :class:`InvalidToken` saying why not.

        Raises :class:`~ordersaga.auth.jwks.KeyUnavailable` when the keys cannot be had
        at all (the JWKS is unreadable): not the token's fault."""
        now = self._clock()
        known = self._verified.get(token)
        if known is not None and now < known[1]:
            return known[0]
        principal, expires = await self._verify(token)
        self._remember(token, principal, min(expires + self.audience.leeway, now + REMEMBER_FOR))
        return principal

    def _remember(self, token: str, principal: Principal, until: float) -> None:
        if len(self._verified) >= REMEMBERED_TOKENS:
            now = self._clock()
            self._verified = {t: v for t, v in self._verified.items() if v[1] > now}
            if len(self._verified) >= REMEMBERED_TOKENS:
                self._verified.clear()
        self._verified[token] = (principal, until)

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as error:
            raise InvalidToken("token is malformed") from error
        alg = header.get("alg")
        if alg not in self.algorithms:
            accepted = ", ".join(self.algorithms)
            raise InvalidToken(f"token algorithm {str(alg)[:20]!r} is not accepted; use {accepted}")
        kid = header.get("kid")
        key = await self.keys.key(kid if isinstance(kid, str) else None)
        if key is None:
            raise InvalidToken("token is signed with an unknown key (kid)")
        if key.algorithm_name != alg:
            raise InvalidToken("token algorithm does not match its key")
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=self.audience.audience,
                issuer=self.audience.issuer,
                leeway=self.audience.leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.InvalidTokenError as error:
            raise InvalidToken(reason(error)) from error
        return Principal.of_claims(claims), float(claims["exp"])

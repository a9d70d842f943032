"""Minting tokens with the local key, and a cache of them for clients that place many
orders (the demo, the benchmark, the tests)."""

import re
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from ordersaga.auth.local_key import MAX_TTL, SigningKey, load_or_create
from ordersaga.auth.principal import OPERATOR, ROLES_CLAIM
from ordersaga.auth.verify import Audience

_TTL = re.compile(r"(\d+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> timedelta:
    """``90``, ``90s``, ``30m``, ``1h``, ``1d`` → a duration; ``ValueError`` otherwise."""
    found = _TTL.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not a duration such as 90s, 30m or 1h")
    return timedelta(seconds=int(found[1]) * _UNITS[found[2]])


def mint(
    key: SigningKey,
    audience: Audience,
    subject: str,
    *,
    roles: Iterable[str] = (),
    ttl: timedelta = timedelta(hours=1),
    now: float | None = None,
) -> str:
    """A token for ``subject`` with ``roles``, valid for ``ttl`` (at most :data:`MAX_TTL`)."""
    if not timedelta(0) < ttl <= MAX_TTL:
        raise ValueError(f"a token lives more than 0 s and at most {MAX_TTL}; not {ttl}")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": audience.issuer,
        "aud": audience.audience,
        "sub": subject,
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(ttl.total_seconds()),
        "jti": str(uuid.uuid4()),
    }
    if roles := sorted(set(roles)):
        claims[ROLES_CLAIM] = roles
    return key.sign(claims)


class LocalTokens:
    """Tokens signed with the local key at ``key_file``, minted once per subject and
    minted again when a quarter of their life is left."""

    def __init__(
        self,
        key_file: Path,
        audience: Audience,
        ttl: timedelta = timedelta(hours=1),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key_file = key_file
        self._audience = audience
        self._ttl = ttl
        self._clock = clock
        self._key: SigningKey | None = None
        self._minted: dict[tuple[str, bool], tuple[str, float]] = {}

    def for_user(self, user: int) -> str:
        """A customer's token: ``sub`` is the user id."""
        return self._token(str(user), operator=False)

    def operator(self, subject: str = "ordersaga-cli") -> str:
        """An operator's token, which reads every order."""
        return self._token(subject, operator=True)

    def _token(self, subject: str, *, operator: bool) -> str:
        now = self._clock()
        cached = self._minted.get((subject, operator))
        if cached is not None and cached[1] > now:
            return cached[0]
        if self._key is None:
            self._key = load_or_create(self.key_file)
        roles = (OPERATOR,) if operator else ()
        token = mint(self._key, self._audience, subject, roles=roles, ttl=self._ttl, now=now)
        self._minted[(subject, operator)] = (token, now + self._ttl.total_seconds() * 0.75)
        return token

"""Where the keys that verify tokens come from: a JWKS file, or a JWKS URL fetched and
cached.

A token names its key by ``kid``. An unknown ``kid`` makes the source look again (the
issuer may have rotated its key), but never more often than ``min_refresh`` seconds
apart: a stream of tokens with made-up ids must not turn into a stream of fetches.
PyJWT's ``PyJWKClient`` fetches with blocking ``urllib`` on the event loop and again on
every unknown ``kid``; here the fetch is asynchronous and rate-floored, and PyJWT
parses the keys (:class:`jwt.PyJWKSet`).
"""

import asyncio
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import httpx
import jwt

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class KeyUnavailable(Exception):
    """The JWKS cannot be read or fetched, or holds no usable key."""


class KeySource(Protocol):
    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key ``kid`` names (the only key when ``kid`` is ``None`` and there is
        one), or ``None`` when there is no such key even after looking again."""


def parse_jwks(data: Any, where: str) -> dict[str | None, jwt.PyJWK]:
    """The signing keys of a JWKS document by ``kid``; keys PyJWT cannot use are left out."""
    try:
        keys = jwt.PyJWKSet.from_dict(data).keys
    except (jwt.PyJWKSetError, jwt.InvalidKeyError, AttributeError, TypeError) as error:
        raise KeyUnavailable(f"{where} is not a usable JWKS: {error}") from error
    return {k.key_id: k for k in keys if k.public_key_use in (None, "sig")}


def _pick(keys: dict[str | None, jwt.PyJWK], kid: str | None) -> jwt.PyJWK | None:
    if kid is None:
        return next(iter(keys.values())) if len(keys) == 1 else None
    return keys.get(kid)


class _Cached(ABC):
    """Keys loaded by ``load``, looked up by ``kid``, loaded again on a miss at most once
    per ``min_refresh`` seconds, and at the latest after ``max_age``."""

    def __init__(self, min_refresh: float, max_age: float, clock: Clock) -> None:
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._loaded_at: float | None = None
        self._min_refresh = min_refresh
        self._max_age = max_age
        self._clock = clock
        self._lock = asyncio.Lock()
        self.loads = 0

    @abstractmethod
    async def load(self) -> dict[str | None, jwt.PyJWK]:
        """Every key of the set, by ``kid`` (a file read, or a URL fetched)."""

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        now = self._clock()
        stale = self._loaded_at is None or now - self._loaded_at >= self._max_age
        found = None if stale else _pick(self._keys, kid)
        if found is not None:
            return found
        async with self._lock:
            found = _pick(self._keys, kid)
            fresh = self._loaded_at is not None and self._clock() - self._loaded_at < self._max_age
            if found is not None and fresh:
                return found  # another request loaded them meanwhile
            if self._loaded_at is None or self._clock() - self._loaded_at >= self._min_refresh:
                await self._reload()
            return _pick(self._keys, kid)

    async def _reload(self) -> None:
        try:
            self._keys = await self.load()
        except KeyUnavailable:
            if not self._keys:
                raise
            log.warning("keeping the JWKS loaded before: the new one is unusable", exc_info=True)
        finally:
            self._loaded_at = self._clock()
            self.loads += 1


class JwksFile(_Cached):
    """The keys of a JWKS file: the local key's (``ordersaga token``), or one a
    deployment puts in place; a key added to the file is found without a restart."""

    def __init__(
        self,
        path: Path,
        *,
        min_refresh: float = 1.0,
        max_age: float = 60.0,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(min_refresh, max_age, clock)
        self.path = path

    async def load(self) -> dict[str | None, jwt.PyJWK]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as error:
            raise KeyUnavailable(f"cannot read the JWKS file {self.path}: {error}") from error
        return parse_jwks(data, str(self.path))


class JwksUrl(_Cached):
    """The keys an identity provider publishes at ``url`` (its ``jwks_uri``)."""

    def __init__(
        self,
        url: str,
        *,
        min_refresh: float = 30.0,
        max_age: float = 3600.0,
        timeout: float = 5.0,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(min_refresh, max_age, clock)
        self.url = url
        self._timeout = timeout

    async def load(self) -> dict[str | None, jwt.PyJWK]:
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as http:
                response = await http.get(self.url, headers={"Accept": "application/json"})
                response.raise_for_status()
                data = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise KeyUnavailable(f"cannot fetch the JWKS at {self.url}: {error}") from error
        return parse_jwks(data, self.url)

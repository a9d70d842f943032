"""The local signing key: minted tokens for the demo, the tests and a person trying the
system, with no identity provider.

The private key is a PEM file readable by its owner only (0600); its public half is
published in a JWKS file beside it (``signing-key.pem`` → ``signing-key.jwks.json``),
which is what the services verify against by default. Rotating adds a new key to the
JWKS and signs with it from then on; the old public keys stay in the JWKS until every
token they signed has expired (:data:`MAX_TTL` after the rotation), then the next
rotation drops them.
"""

import base64
import contextlib
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

KEY_FILE_NAME = "signing-key.pem"
ALGORITHM = "ES256"
MAX_TTL = timedelta(hours=24)
"""The longest a minted token lives; also how long a retired key stays published."""
RETIRED_AT = "ordersaga_retired_at"
"""A JWKS member of ours on a key no longer used to sign: when it was retired (epoch s).
JWK readers ignore members they do not know (RFC 7517, 4)."""


def default_key_file(data_dir: Path) -> Path:
    """Where the local key lives in a data directory."""
    return data_dir / "auth" / KEY_FILE_NAME


def jwks_file(key_file: Path) -> Path:
    """The JWKS published beside ``key_file``."""
    return key_file.with_name(f"{key_file.stem}.jwks.json")


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private: ec.EllipticCurvePrivateKey

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private, algorithm=ALGORITHM, headers={"kid": self.kid})

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}


def thumbprint(public: ec.EllipticCurvePublicKey) -> str:
    """The RFC 7638 thumbprint of an EC public key, the key's ``kid``."""
    jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _of_pem(pem: bytes, where: Path) -> SigningKey:
    private = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{where} holds no EC private key; delete it to create a new one")
    return SigningKey(thumbprint(private.public_key()), private)


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, pem: bytes, *, replace: bool) -> None:
    """Write ``pem`` at ``path`` with mode 0600 from its first byte; without ``replace``
    a file already there wins (two processes creating the key at once agree on one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        if replace:
            os.replace(temporary, path)
        else:
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)  # atomic, and refuses to overwrite
    finally:
        temporary.unlink(missing_ok=True)


def _temporary(path: Path) -> Path:
    """A file beside ``path`` no other writer (process or thread) picks."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def _read_jwks(path: Path) -> list[dict[str, Any]]:
    try:
        keys = json.loads(path.read_text()).get("keys", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [k for k in keys if isinstance(k, dict)]


def _write_jwks(path: Path, keys: list[dict[str, Any]]) -> None:
    temporary = _temporary(path)
    temporary.write_text(json.dumps({"keys": keys}, indent=2) + "\n")
    os.replace(temporary, path)


def _publish(key: SigningKey, key_file: Path, now: float, retire_others: bool) -> None:
    """Make the JWKS beside ``key_file`` hold ``key`` first; other keys are kept (marked
    retired when ``retire_others``) until :data:`MAX_TTL` after their retirement."""
    path = jwks_file(key_file)
    kept = []
    for jwk in _read_jwks(path):
        if jwk.get("kid") == key.kid:
            continue
        if retire_others and RETIRED_AT not in jwk:
            jwk = {**jwk, RETIRED_AT: int(now)}
        retired = jwk.get(RETIRED_AT)
        if isinstance(retired, int | float) and now - retired > MAX_TTL.total_seconds() + 300:
            continue  # every token it signed has expired
        kept.append(jwk)
    _write_jwks(path, [key.public_jwk(), *kept])


def load_or_create(key_file: Path, now: float | None = None) -> SigningKey:
    """The key at ``key_file``, created on first use; its JWKS is written when it lacks it."""
    if not key_file.exists():
        _write_private(key_file, _pem(ec.generate_private_key(ec.SECP256R1())), replace=False)
    key = _of_pem(key_file.read_bytes(), key_file)
    if not any(k.get("kid") == key.kid for k in _read_jwks(jwks_file(key_file))):
        _publish(key, key_file, time.time() if now is None else now, retire_others=False)
    return key


def rotate(key_file: Path, now: float | None = None) -> SigningKey:
    """Sign with a new key from now on; the old ones stay published while their tokens
    may live. Returns the new key."""
    load_or_create(key_file, now)  # the current key is published before it is retired
    key_pem = _pem(ec.generate_private_key(ec.SECP256R1()))
    key = _of_pem(key_pem, key_file)
    _publish(key, key_file, time.time() if now is None else now, retire_others=True)
    _write_private(key_file, key_pem, replace=True)
    return key


def published_kids(key_file: Path) -> list[str]:
    """The ids of the keys in the JWKS beside ``key_file``, the signing one first."""
    return [str(k.get("kid")) for k in _read_jwks(jwks_file(key_file))]

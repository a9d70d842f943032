"""The verifier and the local tokens the settings ask for, built in the wiring."""

import logging
from pathlib import Path

from ordersaga.auth.jwks import JwksFile, JwksUrl, KeySource
from ordersaga.auth.local_key import default_key_file, jwks_file, load_or_create
from ordersaga.auth.tokens import LocalTokens
from ordersaga.auth.verify import Audience, TokenVerifier
from ordersaga.config import Settings

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path("data")

DISABLED_WARNING = (
    "authentication is DISABLED (ORDERSAGA_AUTH=disabled): anyone who reaches the API "
    "may place and read every order as an operator; unset it to require tokens"
)


def audience_of(settings: Settings) -> Audience:
    return Audience(settings.auth_issuer, settings.auth_audience, settings.auth_leeway)


def local_key_file(settings: Settings, data_dir: Path = DEFAULT_DATA_DIR) -> Path:
    """The local signing key's file: ``ORDERSAGA_AUTH_KEY_FILE``, else in ``data_dir``."""
    return settings.auth_key_file or default_key_file(data_dir)


def key_source(settings: Settings, data_dir: Path = DEFAULT_DATA_DIR) -> KeySource:
    """The JWKS URL, else the JWKS file, else the local key's JWKS (the key is created
    when there is none yet, so ``ordersaga token`` and the API agree on it)."""
    if settings.auth_jwks_url:
        return JwksUrl(settings.auth_jwks_url, min_refresh=settings.auth_jwks_min_refresh)
    if settings.auth_jwks_file is not None:
        return JwksFile(settings.auth_jwks_file)
    key_file = local_key_file(settings, data_dir)
    load_or_create(key_file)
    return JwksFile(jwks_file(key_file))


def verifier(settings: Settings, data_dir: Path = DEFAULT_DATA_DIR) -> TokenVerifier | None:
    """The API's token verifier; ``None``, with a warning logged, when authentication
    is disabled."""
    if settings.auth == "disabled":
        log.warning(DISABLED_WARNING)
        return None
    return TokenVerifier(key_source(settings, data_dir), audience_of(settings))


def client_tokens(
    settings: Settings, data_dir: Path = DEFAULT_DATA_DIR
) -> LocalTokens | None:
    """What a tool's client sends: tokens minted with the local key, or none when
    authentication is disabled."""
    return None if settings.auth == "disabled" else local_tokens(settings, data_dir)


def local_tokens(settings: Settings, data_dir: Path = DEFAULT_DATA_DIR) -> LocalTokens:
    """Tokens minted with the local key, as the API started on ``data_dir`` verifies them."""
    return LocalTokens(local_key_file(settings, data_dir), audience_of(settings))

"""The real-stack tests run on Kafka's SASL_SSL listener, as `make infra-up` sets it up.

Unless the environment names a security protocol already, the settings are taken from
the infra's ``kafka-security/client.env`` (under INFRA_CACHE, or this checkout's
``.cache``): the secure listener's address, the CA, ``admin``'s credentials for the tests
themselves and ``{service}`` credentials for the replicas they start.
"""

import os
from collections.abc import MutableMapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def client_env_file(environ: MutableMapping[str, str]) -> Path:
    cache = Path(environ.get("INFRA_CACHE") or ROOT / ".cache")
    return cache / "kafka-security" / "client.env"


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines; blank lines and ``#`` comments skipped."""
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def use_secure_listener(environ: MutableMapping[str, str] = os.environ) -> None:
    """Put the secure listener's settings into ``environ`` unless it names a protocol."""
    if environ.get("ORDERSAGA_KAFKA_SECURITY_PROTOCOL"):
        return
    path = client_env_file(environ)
    if not path.is_file():
        raise RuntimeError(
            f"{path} is missing: the real-stack tests run on Kafka's SASL_SSL listener, which "
            "`make infra-up` sets up (or set ORDERSAGA_KAFKA_SECURITY_PROTOCOL and the rest "
            "of ORDERSAGA_KAFKA_* yourself)"
        )
    environ.update(read_env_file(path))

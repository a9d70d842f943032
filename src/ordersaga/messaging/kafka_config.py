"""From :class:`~ordersaga.config.Settings` to the options of aiokafka's clients.

One pure mapping, shared by the admin client, the producers and the consumers, so a
cluster that needs TLS or SASL is reached the same way by all of them. The settings are
checked here: a combination that cannot work is refused with what to change, rather
than ignored (a CA file silently unused on a PLAINTEXT connection is a security hole).
"""

import ssl
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka.helpers import create_ssl_context  # type: ignore[import-untyped]
from pydantic import SecretStr

from ordersaga.config import Settings

SslContextFactory = Callable[..., ssl.SSLContext]

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_WITH_SASL = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
_WITH_TLS = frozenset({"SSL", "SASL_SSL"})
# The mechanisms that authenticate with a user name and a password, the only credentials
# the settings carry (GSSAPI and OAUTHBEARER would need more).
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

PRODUCER_OPTIONS: Mapping[str, Any] = {
    # Idempotent with acks from every in-sync replica: a retried send is written once,
    # and an acknowledged record survives the loss of the leader.
    "enable_idempotence": True,
    "acks": "all",
    # No linger: a relay hands over a whole outbox batch at once, and what is sent while
    # a request is in flight waits for it and travels in the next one, so records batch
    # by themselves under load. Lingering only delayed every message of an idle system
    # (5 ms took a hop from about 2 ms to 7).
    "linger_ms": 0,
}

CONSUMER_OPTIONS: Mapping[str, Any] = {
    # Offsets are committed by the consumer loop, after the database transaction.
    "enable_auto_commit": False,
    # A new group starts at the beginning: messages sent before a service first started
    # are work to do, not history.
    "auto_offset_reset": "earliest",
    # A member that stops heartbeating (a killed replica) loses its partitions after
    # 10 s; the broker refuses anything under group.min.session.timeout.ms (6 s).
    "session_timeout_ms": 10_000,
    # Members learn of a rebalance on their next heartbeat, so a replica that joins or
    # leaves gets its share within about half a second rather than the default 3 s.
    "heartbeat_interval_ms": 500,
    # The consumer loop polls at least every second while healthy, but retries a record
    # for as long as its database is away. A member that has not polled for a minute
    # leaves the group, so its partitions go to a replica that can work on them.
    "max_poll_interval_ms": 60_000,
    # How long the coordinator waits for every member to rejoin during a rebalance;
    # members rejoin in the background, so the session timeout is plenty.
    "rebalance_timeout_ms": 10_000,
}


def _validated_protocol(settings: Settings) -> str:
    protocol = settings.kafka_security_protocol.strip().upper()
    if protocol not in SECURITY_PROTOCOLS:
        raise ValueError(
            f"ORDERSAGA_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol!r} is not "
            f"supported; use one of {', '.join(SECURITY_PROTOCOLS)}"
        )
    return protocol


def _sasl_options(settings: Settings) -> dict[str, Any]:
    mechanism = (settings.kafka_sasl_mechanism or "PLAIN").strip().upper()
    if mechanism not in SASL_MECHANISMS:
        raise ValueError(
            f"ORDERSAGA_KAFKA_SASL_MECHANISM={settings.kafka_sasl_mechanism!r} is not "
            f"supported; use one of {', '.join(SASL_MECHANISMS)}"
        )
    password = settings.kafka_sasl_password
    if not settings.kafka_sasl_username or password is None:
        raise ValueError(
            "SASL needs credentials: set ORDERSAGA_KAFKA_SASL_USERNAME and "
            "ORDERSAGA_KAFKA_SASL_PASSWORD (or ORDERSAGA_KAFKA_SASL_PASSWORD_FILE)"
        )
    return {
        "sasl_mechanism": mechanism,
        "sasl_plain_username": settings.kafka_sasl_username,
        "sasl_plain_password": password.get_secret_value(),
    }


def for_service(settings: Settings, service: str) -> Settings:
    """The settings a replica of ``service`` reaches Kafka with: logged in as its own
    user when ``<service>_kafka_sasl_username`` is set (with its
    ``<service>_kafka_sasl_password``), else ``settings`` unchanged."""
    username: str | None = getattr(settings, f"{service}_kafka_sasl_username")
    if not username:
        return settings
    password: SecretStr | None = getattr(settings, f"{service}_kafka_sasl_password")
    if password is None:
        variable = f"ORDERSAGA_{service.upper()}_KAFKA_SASL_PASSWORD"
        raise ValueError(
            f"ORDERSAGA_{service.upper()}_KAFKA_SASL_USERNAME is set without {variable} "
            f"(or {variable}_FILE); set both, or neither"
        )
    return settings.model_copy(
        update={"kafka_sasl_username": username, "kafka_sasl_password": password}
    )


def _ssl_options(settings: Settings, make_context: SslContextFactory) -> dict[str, Any]:
    if settings.kafka_ssl_keyfile and not settings.kafka_ssl_certfile:
        raise ValueError(
            "ORDERSAGA_KAFKA_SSL_KEYFILE is set without ORDERSAGA_KAFKA_SSL_CERTFILE; "
            "set the client certificate too, or neither"
        )
    context = make_context(
        cafile=settings.kafka_ssl_cafile,
        certfile=settings.kafka_ssl_certfile,
        keyfile=settings.kafka_ssl_keyfile,
    )
    return {"ssl_context": context}


def _refuse_unused(settings: Settings, protocol: str) -> None:
    """Credentials or certificates that the chosen protocol would silently not use."""
    if protocol not in _WITH_SASL and (
        settings.kafka_sasl_username
        or settings.kafka_sasl_mechanism
        or settings.kafka_sasl_password
    ):
        raise ValueError(
            f"SASL settings are given but ORDERSAGA_KAFKA_SECURITY_PROTOCOL is {protocol}; "
            "set it to SASL_PLAINTEXT or SASL_SSL, or remove the SASL settings"
        )
    ssl_files = (
        settings.kafka_ssl_cafile,
        settings.kafka_ssl_certfile,
        settings.kafka_ssl_keyfile,
    )
    if protocol not in _WITH_TLS and any(ssl_files):
        raise ValueError(
            f"SSL files are given but ORDERSAGA_KAFKA_SECURITY_PROTOCOL is {protocol}; "
            "set it to SSL or SASL_SSL, or remove the SSL settings"
        )


def client_options(
    settings: Settings, make_ssl_context: SslContextFactory = create_ssl_context
) -> dict[str, Any]:
    """The connection options every aiokafka client takes (admin, producer, consumer).

    Raises :class:`ValueError`, naming the settings to change, for a combination that
    cannot work. ``make_ssl_context`` builds the TLS context from the certificate files
    (aiokafka's helper; its only side effect is reading those files).
    """
    protocol = _validated_protocol(settings)
    _refuse_unused(settings, protocol)
    options: dict[str, Any] = {
        "bootstrap_servers": [
            server.strip()
            for server in settings.kafka_bootstrap_servers.split(",")
            if server.strip()
        ],
        "security_protocol": protocol,
    }
    if not options["bootstrap_servers"]:
        raise ValueError("ORDERSAGA_KAFKA_BOOTSTRAP_SERVERS is empty; set host:port[,host:port]")
    if protocol in _WITH_SASL:
        options.update(_sasl_options(settings))
    if protocol in _WITH_TLS:
        options.update(_ssl_options(settings, make_ssl_context))
    return options

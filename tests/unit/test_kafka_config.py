"""Settings → aiokafka client options: security options passed through, nonsense refused."""

import os
import ssl
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from ordersaga.config import Settings
from ordersaga.messaging.kafka_config import (
    CONSUMER_OPTIONS,
    PRODUCER_OPTIONS,
    client_options,
    for_service,
)


class SslContexts:
    """Builds real (default) TLS contexts and remembers which files each was asked for."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def __call__(self, **files: Any) -> ssl.SSLContext:
        self.requests.append(files)
        return ssl.create_default_context()


@pytest.fixture(autouse=True)
def no_kafka_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test passes counts, whatever the machine's environment says."""
    for name in list(os.environ):
        if name.startswith("ORDERSAGA_") and "KAFKA_" in name:
            monkeypatch.delenv(name)


def settings(**values: Any) -> Settings:
    return Settings(**values)


def test_plaintext_is_only_the_servers_and_the_protocol() -> None:
    contexts = SslContexts()
    options = client_options(
        settings(kafka_bootstrap_servers="kafka-1:9092, kafka-2:9092,"), contexts
    )
    assert options == {
        "bootstrap_servers": ["kafka-1:9092", "kafka-2:9092"],
        "security_protocol": "PLAINTEXT",
    }
    assert contexts.requests == []


def test_sasl_ssl_passes_credentials_and_a_context_from_the_files() -> None:
    contexts = SslContexts()
    options = client_options(
        settings(
            kafka_security_protocol="sasl_ssl",
            kafka_sasl_mechanism="scram-sha-512",
            kafka_sasl_username="ordersaga",
            kafka_sasl_password=SecretStr("s3cret"),
            kafka_ssl_cafile="/etc/ca.pem",
            kafka_ssl_certfile="/etc/client.pem",
            kafka_ssl_keyfile="/etc/client.key",
        ),
        contexts,
    )
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "ordersaga"
    assert options["sasl_plain_password"] == "s3cret"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert contexts.requests == [
        {"cafile": "/etc/ca.pem", "certfile": "/etc/client.pem", "keyfile": "/etc/client.key"}
    ]


def test_ssl_without_files_trusts_the_system_authorities() -> None:
    contexts = SslContexts()
    options = client_options(settings(kafka_security_protocol="SSL"), contexts)
    assert set(options) == {"bootstrap_servers", "security_protocol", "ssl_context"}
    assert contexts.requests == [{"cafile": None, "certfile": None, "keyfile": None}]


def test_sasl_plaintext_defaults_to_the_plain_mechanism() -> None:
    options = client_options(
        settings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_username="u",
            kafka_sasl_password=SecretStr("p"),
        ),
        SslContexts(),
    )
    assert options["sasl_mechanism"] == "PLAIN"
    assert "ssl_context" not in options


def test_the_real_ssl_helper_builds_a_context() -> None:
    options = client_options(settings(kafka_security_protocol="SSL"))
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({"kafka_security_protocol": "TLS"}, "ORDERSAGA_KAFKA_SECURITY_PROTOCOL"),
        ({"kafka_security_protocol": "SASL_SSL"}, "ORDERSAGA_KAFKA_SASL_USERNAME"),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": "GSSAPI",
                "kafka_sasl_username": "u",
                "kafka_sasl_password": SecretStr("p"),
            },
            "ORDERSAGA_KAFKA_SASL_MECHANISM",
        ),
        ({"kafka_sasl_username": "u"}, "SASL_PLAINTEXT or SASL_SSL"),
        ({"kafka_ssl_cafile": "/etc/ca.pem"}, "SSL or SASL_SSL"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_keyfile": "/etc/client.key"},
            "ORDERSAGA_KAFKA_SSL_CERTFILE",
        ),
        ({"kafka_bootstrap_servers": " , "}, "ORDERSAGA_KAFKA_BOOTSTRAP_SERVERS"),
    ],
)
def test_settings_that_cannot_work_are_refused_naming_what_to_change(
    values: dict[str, Any], names: str
) -> None:
    with pytest.raises(ValueError, match=names):
        client_options(settings(**values), SslContexts())


def test_the_producer_is_idempotent_and_waits_for_every_replica() -> None:
    assert PRODUCER_OPTIONS["enable_idempotence"] is True
    assert PRODUCER_OPTIONS["acks"] == "all"


def test_the_consumer_commits_only_when_told_and_starts_from_the_beginning() -> None:
    assert CONSUMER_OPTIONS["enable_auto_commit"] is False
    assert CONSUMER_OPTIONS["auto_offset_reset"] == "earliest"
    # Heartbeats must be well inside the session, or members drop out between them.
    assert CONSUMER_OPTIONS["heartbeat_interval_ms"] * 3 <= CONSUMER_OPTIONS["session_timeout_ms"]


SCRAM = {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-512"}


def test_the_password_may_come_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "admin.password"
    secret.write_text("from-the-file\n")
    monkeypatch.setenv("ORDERSAGA_KAFKA_SASL_PASSWORD_FILE", str(secret))
    options = client_options(settings(**SCRAM, kafka_sasl_username="admin"), SslContexts())
    assert options["sasl_plain_password"] == "from-the-file"


def test_a_password_is_refused_without_sasl() -> None:
    with pytest.raises(ValueError, match="SASL_PLAINTEXT or SASL_SSL"):
        client_options(settings(kafka_sasl_password=SecretStr("p")), SslContexts())


def test_each_service_logs_in_as_itself_with_its_own_password_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("stock", "payment"):
        path = tmp_path / f"{name}.password"
        path.write_text(f"{name}-secret\n")
        monkeypatch.setenv(f"ORDERSAGA_{name.upper()}_KAFKA_SASL_PASSWORD_FILE", str(path))
    shared = settings(
        **SCRAM,
        kafka_sasl_username="admin",
        kafka_sasl_password=SecretStr("admin-secret"),
        stock_kafka_sasl_username="svc-stock",
        payment_kafka_sasl_username="svc-payment",
    )
    logins = {
        name: client_options(for_service(shared, name), SslContexts())
        for name in ("stock", "payment")
    }
    found = {n: (o["sasl_plain_username"], o["sasl_plain_password"]) for n, o in logins.items()}
    assert found == {
        "stock": ("svc-stock", "stock-secret"),
        "payment": ("svc-payment", "payment-secret"),
    }
    assert client_options(shared, SslContexts())["sasl_plain_username"] == "admin"


def test_without_service_credentials_a_service_uses_the_shared_ones() -> None:
    shared = settings(**SCRAM, kafka_sasl_username="u", kafka_sasl_password=SecretStr("p"))
    assert for_service(shared, "stock") == shared


def test_a_service_user_without_its_password_is_refused() -> None:
    with pytest.raises(ValueError, match="ORDERSAGA_STOCK_KAFKA_SASL_PASSWORD_FILE"):
        for_service(settings(stock_kafka_sasl_username="stock"), "stock")

"""A Kafka that is not there is something to wait for, not a refused login."""

import asyncio
import socket

from ordersaga.config import Settings
from ordersaga.messaging.kafka_login import login_refusal


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_no_broker_answering_is_no_refusal() -> None:
    settings = Settings(
        _env_file=None,
        kafka_bootstrap_servers=f"127.0.0.1:{closed_port()}, 127.0.0.1:{closed_port()}",
        kafka_security_protocol="PLAINTEXT",
        kafka_sasl_username=None,
        kafka_sasl_mechanism=None,
        kafka_sasl_password=None,
        kafka_ssl_cafile=None,
    )
    assert asyncio.run(login_refusal(settings)) is None

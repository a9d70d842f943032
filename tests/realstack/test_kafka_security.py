"""Kafka's secure listener as the services meet it: TLS, SCRAM-SHA-512, and ACLs that let
each service write only what it produces.

Runs on the listener the environment names (`infra/with-infra.sh` exports it with
`infra/infra.sh env`: SASL_SSL as `admin`, each service as itself).
"""

import asyncio
import json
import subprocess
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.errors import (
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)
from pydantic import SecretStr

from ordersaga.config import Settings
from ordersaga.contracts import topics
from ordersaga.contracts.messages import PaymentProcessed
from ordersaga.contracts.statuses import PaymentStatus
from ordersaga.messaging.kafka import KafkaBroker
from ordersaga.messaging.kafka_config import PRODUCER_OPTIONS, client_options, for_service
from tests.auth_support import operator_headers
from tests.realstack.secure_kafka import SECURE_LISTENER_NEEDED
from tests.realstack.stack import CLI, Stack
from tests.realstack.test_real_stack import place, wait_all

PAYMENT_STEP = "process_payment"
NO_SASL = {
    "kafka_sasl_username": None,
    "kafka_sasl_mechanism": None,
    "kafka_sasl_password": None,
}


@pytest.fixture
def secure() -> Settings:
    """The environment's settings, which must name the secure listener."""
    settings = Settings()
    assert settings.kafka_security_protocol.upper() == "SASL_SSL", SECURE_LISTENER_NEEDED
    assert settings.stock_kafka_sasl_username, "ORDERSAGA_STOCK_KAFKA_SASL_USERNAME is unset"
    return settings


def first_server(settings: Settings) -> tuple[str, int]:
    host, port = settings.kafka_bootstrap_servers.split(",")[0].strip().rsplit(":", 1)
    return host, int(port)


async def bootstrap(settings: Settings) -> list[str]:
    """Connect an admin client with ``settings`` and list the topics it may see."""
    admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=5_000)
    try:
        await admin.start()
        return list(await admin.list_topics())
    finally:
        await admin.close()


def test_a_client_without_credentials_is_refused(secure: Settings) -> None:
    over_tls = secure.model_copy(update={**NO_SASL, "kafka_security_protocol": "SSL"})
    plain = secure.model_copy(
        update={**NO_SASL, "kafka_security_protocol": "PLAINTEXT", "kafka_ssl_cafile": None}
    )
    for settings in (over_tls, plain):
        with pytest.raises(KafkaConnectionError):
            asyncio.run(bootstrap(settings))
    asyncio.run(bootstrap(secure))  # while the same listener takes admin's credentials


def test_a_wrong_password_fails_authentication(secure: Settings) -> None:
    wrong = secure.model_copy(update={"kafka_sasl_password": SecretStr("not-it")})
    options = client_options(wrong)
    options.pop("bootstrap_servers")
    host, port = first_server(secure)

    async def connect() -> None:
        conn = await create_conn(host, port, **options, request_timeout_ms=5_000)
        conn.close()

    with pytest.raises(SaslAuthenticationFailed, match="invalid credentials"):
        asyncio.run(connect())


async def send_as(settings: Settings, topic: str, message: PaymentProcessed) -> None:
    producer = AIOKafkaProducer(**client_options(settings), **PRODUCER_OPTIONS)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, message.model_dump_json().encode(), key=message.key.encode()
        )
    finally:
        await producer.stop()


def forged_approval(order: dict[str, Any]) -> PaymentProcessed:
    return PaymentProcessed(
        orderID=order["orderID"],
        userID=order["userID"],
        amount=Decimal(str(order["amount"])),
        status=PaymentStatus.PAYMENT_APPROVED,
    )


async def record_count(settings: Settings, topic: str) -> int:
    ranges = await KafkaBroker(settings).offset_ranges([topic])
    return sum(len(offsets) for offsets in ranges.values())


def saga_shown(stack: Stack, saga_id: str) -> dict[str, Any] | None:
    """``ordersaga sagas show --json``: the saga and its history; None while the
    orchestrator has not started it."""
    done = stack.cli("sagas", "show", saga_id, "--json", check=False)
    if done.returncode != 0 and "no saga" in done.stdout + done.stderr:
        return None
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


def wait_for_step(stack: Stack, saga_id: str, step: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        shown = saga_shown(stack, saga_id)
        if shown is not None and shown["saga"]["step_name"] == step:
            return shown
        assert time.monotonic() < deadline, f"saga {saga_id} never reached {step}: {shown}"
        time.sleep(0.2)


def test_the_stock_principal_may_not_write_payment_replies(secure: Settings) -> None:
    message = forged_approval({"orderID": str(uuid.uuid4()), "userID": 1, "amount": "20.00"})
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(send_as(for_service(secure, "stock"), topics.PAYMENT_PROCESSED, message))


def test_a_forged_payment_reply_never_reaches_the_orchestrator(
    secure: Settings, stack: Stack
) -> None:
    """With payment stopped, the saga waits for its reply; the stock principal's forged
    approval is refused by the broker, so the saga and the topic are untouched; then
    every service does its own job through the secure listener and the order completes."""
    stack.env["ORDERSAGA_PAYMENT_TIMEOUT"] = "300"  # the saga waits for payment meanwhile
    for service in ("order", "orchestrator", "stock"):
        stack.start(service)
    stack.wait_ready()
    with httpx.Client(base_url=stack.api, timeout=10, headers=operator_headers()) as http:
        order = place(http, user=1, product=1, quantity=1)
        saga_id = order["orderID"]
        before = wait_for_step(stack, saga_id, PAYMENT_STEP)

        forged = forged_approval(order)
        with pytest.raises(TopicAuthorizationFailedError):
            asyncio.run(send_as(for_service(secure, "stock"), topics.PAYMENT_PROCESSED, forged))

        assert asyncio.run(record_count(stack.settings, topics.PAYMENT_PROCESSED)) == 0
        assert saga_shown(stack, saga_id) == before
        assert http.get(f"/api/v1/orders/{saga_id}").json()["status"] == "ORDER_CREATED"

        stack.start("payment")
        finished = wait_all(http, [saga_id], timeout=60)
    assert finished[saga_id]["status"] == "ORDER_COMPLETED"
    assert asyncio.run(record_count(stack.settings, topics.PAYMENT_PROCESSED)) == 1
    stack.assert_alive()


def test_a_replica_whose_password_kafka_refuses_stops_at_once_saying_so(stack: Stack) -> None:
    """Not "waiting for Kafka" forever: exit 2, naming the user and what to check, and
    never the password."""
    wrong = "wrong-" + uuid.uuid4().hex
    refused = subprocess.run(
        [*CLI, "serve", "stock"],
        env={
            **stack.env,
            "ORDERSAGA_STOCK_KAFKA_SASL_PASSWORD": wrong,
            "ORDERSAGA_STOCK_KAFKA_SASL_PASSWORD_FILE": "",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = refused.stdout + refused.stderr
    assert refused.returncode == 2, said
    assert "refused the login of user 'stock'" in said
    assert "ORDERSAGA_STOCK_KAFKA_SASL_PASSWORD" in said
    assert wrong not in said

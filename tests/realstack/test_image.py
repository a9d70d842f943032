"""The OCI image: it builds from a fresh clone, its entrypoint answers --help as uid 10001
on a read-only root, and `serve stock` in it joins Kafka and PostgreSQL and answers a
reserve-product command (tests/realstack/image.py says how it runs here)."""

import asyncio
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import text

from ordersaga.config import Settings
from ordersaga.contracts import topics
from ordersaga.contracts.messages import ProductReserved, ReserveProduct
from ordersaga.contracts.statuses import OrderStatus, StockStatus
from ordersaga.db.engine import make_engine
from ordersaga.messaging.envelope import envelope
from ordersaga.messaging.kafka_config import client_options
from tests.realstack.image import CACHE, MountedImage, build_from_a_fresh_clone, run
from tests.realstack.stack import Stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    """The image built by `make image`'s script from a clone of the committed tree: here,
    or beside the in-process tests by infra/test-suite.sh (ORDERSAGA_TEST_IMAGE_BUILT, the
    file where it wrote what it built). To run these tests again without building, the
    image ORDERSAGA_TEST_IMAGE names."""
    if given := os.environ.get("ORDERSAGA_TEST_IMAGE"):
        yield given
        return
    built = os.environ.get("ORDERSAGA_TEST_IMAGE_BUILT")
    if built and Path(built).is_file() and Path(built).stat().st_size:
        record = json.loads(Path(built).read_text())
        name, output, seconds = record["name"], record["output"], record["seconds"]
    else:
        name = f"localhost/ordersaga-test:{uuid.uuid4().hex[:8]}"
        output, seconds = build_from_a_fresh_clone(name)
    size = run("buildah", "images", "--format", "{{.Size}}", name)
    print(f"\nimage {name}: {size}, built in {seconds:.0f} s (cache {CACHE})")
    print(output)
    try:
        yield name
    finally:
        subprocess.run(["buildah", "rmi", "--force", name], capture_output=True, check=False)


def test_the_image_is_configured_to_run_ordersaga_unprivileged(image: str) -> None:
    with MountedImage(image) as mounted:
        config = mounted.config
        assert config["Entrypoint"] == ["/opt/ordersaga/bin/ordersaga"]
        assert config["User"] == "10001:10001"
        assert "Healthcheck" not in config
        assert (mounted.tree / "opt/ordersaga/bin/python").exists()
        passwd = (mounted.tree / "etc/passwd").read_text()
        assert "ordersaga:x:10001:10001:" in passwd


def test_ordersaga_help_runs_in_the_image_as_its_user_on_a_read_only_root(image: str) -> None:
    with MountedImage(image) as mounted:
        done = subprocess.run(
            mounted.command(["--help"], {}), capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "serve" in done.stdout
        # Not root; /tmp takes a write, its own home (on the root) does not.
        probe = [
            "/opt/ordersaga/bin/python",
            "-c",
            "import os; print(os.getuid()); open('/tmp/x', 'w'); open('/home/ordersaga/x', 'w')",
        ]
        done = subprocess.run(
            mounted.command([], {}, entrypoint=probe), capture_output=True, text=True, check=False
        )
        assert done.stdout.strip() == "10001"
        assert "Read-only file system" in done.stderr


def test_serve_stock_in_the_image_answers_a_reserve_product_command(
    image: str, stack: Stack, tmp_path: Path
) -> None:
    env = {k: v for k, v in stack.env.items() if k.startswith("ORDERSAGA_")}
    # Files of the host are not in the image: a secret file's content goes as its setting
    # (as a container would get it from a mounted secret).
    for name in [k for k in env if _setting_file(k)]:
        path = env.pop(name)
        if path:
            env[name.removesuffix("_FILE")] = Path(path).read_text().rstrip("\r\n")
    # and the CA of Kafka's secure listener, at a path inside the container
    files = {}
    if env.get("ORDERSAGA_KAFKA_SSL_CAFILE"):
        files["kafka-ca.crt"] = Path(env["ORDERSAGA_KAFKA_SSL_CAFILE"])
        env["ORDERSAGA_KAFKA_SSL_CAFILE"] = "/tmp/kafka-ca.crt"
    log_path = tmp_path / "stock-image.log"
    with MountedImage(image) as mounted, open(log_path, "wb") as log:
        process = subprocess.Popen(
            mounted.command(["serve", "stock", "--replica", "image"], env, files=files),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_logged(process, log_path, "stock replica image ready: consuming")
            order_id = uuid.uuid4()
            reply = asyncio.run(reserve(stack, order_id))
            assert reply.status == StockStatus.AVAILABLE, reply
            assert reply.quantity == 2
            assert asyncio.run(on_hand(stack, product_id=1)) == 5 - 2
        finally:
            process.terminate()
            code = process.wait(timeout=30)
        logged = log_path.read_text(errors="replace")
        assert code == 0, logged
        assert "stock replica image stopped" in logged


def wait_logged(process: subprocess.Popen[bytes], path: Path, text: str) -> None:
    deadline = time.monotonic() + 90
    while text not in path.read_text(errors="replace"):
        assert process.poll() is None, f"it exited with {process.returncode}:\n{path.read_text()}"
        assert time.monotonic() < deadline, f"never logged {text!r}:\n{path.read_text()}"
        time.sleep(0.2)


async def reserve(stack: Stack, order_id: uuid.UUID) -> ProductReserved:
    """Send reserve-product for 2 of product 1 and read the answer off product-reserved."""
    command = ReserveProduct(
        orderID=order_id,
        userID=1,
        productID=1,
        quantity=2,
        amount=Decimal("40.00"),
        status=OrderStatus.ORDER_CREATED,
    )
    record = envelope(topics.RESERVE_PRODUCT, command)
    options = client_options(stack.settings)  # as the tests' own Kafka user
    consumer = AIOKafkaConsumer(topics.PRODUCT_RESERVED, **options, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(**options)
    await consumer.start()
    await producer.start()
    try:
        await producer.send_and_wait(
            record.topic,
            record.value,
            key=record.key.encode(),
            headers=[(k, v.encode()) for k, v in record.headers.items()],
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for message in records:
                    assert message.value is not None
                    reply = ProductReserved.model_validate_json(message.value)
                    if reply.orderID == order_id:
                        return reply
        raise AssertionError("no product-reserved for the order within 60 s")
    finally:
        await producer.stop()
        await consumer.stop()


def _setting_file(variable: str) -> bool:
    """Whether ``variable`` is ``ORDERSAGA_<X>_FILE`` standing for setting X (and not a
    setting of its own, such as ORDERSAGA_AUTH_KEY_FILE)."""
    name = variable.removeprefix("ORDERSAGA_").lower()
    return name not in Settings.model_fields and name.removesuffix("_file") in Settings.model_fields


async def on_hand(stack: Stack, product_id: int) -> int:
    engine = make_engine(stack.urls["stock"])
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                text("SELECT quantity FROM stock WHERE product_id = :p"), {"p": product_id}
            )
            return int(result.scalar_one())
    finally:
        await engine.dispose()

"""The saga console in Debian's chromium, on the real stack: ``ordersaga up`` on Kafka,
PostgreSQL and MariaDB, the console served by the orchestrator replica's admin port."""

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import httpx
from playwright.async_api import Browser
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.contracts import headers as h
from ordersaga.contracts import topics
from ordersaga.db.engine import make_engine
from ordersaga.messaging.dead_letters import ReadLimits, read_topics
from ordersaga.messaging.factory import make_broker
from ordersaga.messaging.port import Broker, OutgoingMessage
from ordersaga.runtime.processes import free_port
from ordersaga.tools.client import OrderClient
from tests.auth_support import operator_headers, tokens
from tests.console.browser import PHONE, chromium, console_page, screenshot
from tests.console.pages import Console
from tests.console.scenario import (
    COMPLETED,
    NO_MONEY,
    NO_STOCK,
    PARKED,
    UNREADABLE,
    check_saga_page,
    state_of,
    topics_of,
)
from tests.realstack.stack import CLI, Stack
from tests.support import until_async

# Payment answers within 3 s or its step is cancelled; two unacknowledged cancellations park.
TIMEOUTS = {
    "ORDERSAGA_PAYMENT_TIMEOUT": "3",
    "ORDERSAGA_COMPENSATION_TIMEOUT": "1",
    "ORDERSAGA_MAX_COMPENSATION_ATTEMPTS": "2",
}
# Kafka may take a session timeout to give a resumed consumer its partitions back.
RESUME_MS = 120_000


def start_up(stack: Stack) -> int:
    """``ordersaga up`` with one replica of each service; the pid of its payment replica."""
    with open(stack.logs / "up.log", "ab") as log:
        supervisor = subprocess.Popen(
            [*CLI, "up"], env=stack.env, stdout=log, stderr=subprocess.STDOUT
        )
    stack.processes["up"] = supervisor  # so a failure shows its log and it is stopped
    stack.wait_ready()
    for task in Path(f"/proc/{supervisor.pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if "serve\0payment\0" in Path(f"/proc/{child}/cmdline").read_text():
                return int(child)
    raise AssertionError(f"no payment replica under ordersaga up\n{stack.log_tails()}")


async def admin_ready(base: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2, headers=operator_headers()) as http:
            return (await http.get(f"{base}/admin/v1/sagas/counts")).status_code == 200
    except httpx.TransportError:
        return False


async def is_state(engine: AsyncEngine, saga_id: str, state: str) -> bool:
    return await state_of(engine, saga_id) == state


async def replays_of(broker: Broker, dead_letter: str) -> int:
    limits = ReadLimits(patience=5.0, quiet=1.0)
    found = 0
    async with contextlib.aclosing(read_topics(broker, [topics.ORDER_CREATED], limits)) as records:
        async for record in records:
            found += record.headers.get(h.DLQ_REPLAYED_FROM) == dead_letter
    return found


async def test_an_operator_finds_reads_and_acts_on_sagas_in_the_console(
    stack: Stack, tmp_path: Path
) -> None:
    admin_port = free_port()
    base = f"http://127.0.0.1:{admin_port}"
    stack.env |= {**TIMEOUTS, "ORDERSAGA_ADMIN_PORT": str(admin_port)}
    payment = start_up(stack)
    await until_async(lambda: admin_ready(base), 60, "the admin API on the orchestrator")
    engine = make_engine(stack.urls["orchestrator"])
    broker = make_broker(stack.settings)
    try:
        async with httpx.AsyncClient(base_url=stack.api, timeout=10) as http:
            api = OrderClient(http, tokens())
            placed = {}
            for name, order in {
                "completed": COMPLETED,
                "no_stock": NO_STOCK,
                "no_money": NO_MONEY,
            }.items():
                order_id = str((await api.place(*order))["orderID"])
                assert (await api.wait(order_id, timeout=60))["status"] != "ORDER_CREATED"
                placed[name] = order_id
            os.kill(payment, signal.SIGSTOP)  # payment hangs: its saga will park
            try:
                parked = str((await api.place(*PARKED))["orderID"])
                await until_async(
                    lambda: is_state(engine, parked, "PARKED"), 60, f"saga {parked} PARKED"
                )
                poison = OutgoingMessage(topics.ORDER_CREATED, str(uuid4()), UNREADABLE)
                await broker.producer().send_batch([poison])
                scene = Scene(base, engine, broker, placed, parked, payment, tmp_path)
                async with chromium() as browser:
                    await drive_console(browser, scene)
            finally:
                os.kill(payment, signal.SIGCONT)
            assert (await api.get(parked))["status"] == "ORDER_CANCELLED"
    finally:
        await broker.close()
        await engine.dispose()
    done = stack.cli("verify", check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@dataclass(frozen=True)
class Scene:
    base: str
    engine: AsyncEngine
    broker: Broker
    placed: dict[str, str]
    parked: str
    payment: int
    """The pid of the payment replica, stopped until the parked saga is retried."""
    artefacts: Path


async def drive_console(browser: Browser, scene: Scene) -> None:
    async with console_page(browser) as page:
        console = Console(page, scene.base)
        await console.sign_in(tokens().operator())
        await console.overview()
        assert await console.figure("parked") == "1"
        assert await console.count_of("COMPLETED") == "1"
        assert await console.count_of("CANCELLED") == "2"
        await screenshot(page, scene.artefacts, "realstack-overview-laptop")

        shown = await check_saga_page(console, scene.engine, scene.placed["completed"])
        assert topics_of(shown, "message_out") == [
            topics.RESERVE_PRODUCT,
            topics.PROCESS_PAYMENT,
            topics.ORDER_UPDATED,
        ]
        assert all(event.offset != "" for event in shown if event.kind == "message_in")
        await screenshot(page, scene.artefacts, "realstack-saga-laptop")
        shown = await check_saga_page(console, scene.engine, scene.placed["no_stock"])
        assert topics.PROCESS_PAYMENT not in topics_of(shown, "message_out")
        shown = await check_saga_page(console, scene.engine, scene.placed["no_money"])
        assert topics_of(shown, "compensation_attempt") == [topics.CANCEL_PRODUCT_RESERVATION]
        shown = await check_saga_page(console, scene.engine, scene.parked)
        assert topics_of(shown, "compensation_attempt") == [topics.CANCEL_PAYMENT] * 2

        answer = await console.act("Retry…", "Retry", "payment is back")
        assert "COMPENSATING" in answer, answer
        os.kill(scene.payment, signal.SIGCONT)
        await console.wait_for_state("CANCELLED", RESUME_MS)
        actions = [e for e in await console.timeline() if e.kind == "operator_action"]
        assert len(actions) == 1, actions

        await console.dead_letters()
        letters = await console.dead_letter_rows()
        assert len(letters) == 1, letters
        [letter] = letters
        assert await console.show_dead_letter(letter) == UNREADABLE.decode()
        answer = await console.act("Replay…", "Replay", "checking the replay")
        assert f"Replayed {letter}" in answer, answer
        assert await replays_of(scene.broker, letter) == 1

    async with console_page(browser, PHONE) as page:
        console = Console(page, scene.base)
        await console.sign_in(tokens().operator())
        await console.overview()
        await screenshot(page, scene.artefacts, "realstack-overview-phone")
        await console.find(scene.placed["no_money"])
        await console.open_found(scene.placed["no_money"])
        await screenshot(page, scene.artefacts, "realstack-saga-phone")

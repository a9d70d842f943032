"""The saga console in Debian's chromium, on the embedded system: an operator finds each
kind of saga from the search, reads its timeline (checked against the orchestrator's
database), retries a parked saga and replays a dead letter, all from the page."""

import contextlib
from pathlib import Path
from uuid import uuid4

import pytest

from ordersaga.config import Settings
from ordersaga.contracts import headers as h
from ordersaga.contracts import topics
from ordersaga.messaging.dead_letters import ReadLimits, read_topics
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.messaging.port import OutgoingMessage
from ordersaga.runtime.embedded import EmbeddedSystem
from tests.api.admin_support import LossyBroker
from tests.auth_support import tokens
from tests.console.browser import PHONE, chromium, console_page, screenshot
from tests.console.pages import Console
from tests.console.scenario import (
    COMPLETED,
    NO_MONEY,
    NO_STOCK,
    PARKED,
    UNREADABLE,
    check_saga_page,
    serving,
    state_of,
    topics_of,
)
from tests.support import until_async
from tests.system.conftest import api_of, assert_invariants

# A real browser for half a minute: in `make test`, not in the edit-run loop.
pytestmark = pytest.mark.slow

# A payment that does not answer parks its saga after three unacknowledged cancellations.
SETTINGS = Settings(
    payment_timeout=2.0,
    compensation_timeout=0.3,
    timer_interval=0.05,
    max_compensation_attempts=3,
)


async def saga_state(system: EmbeddedSystem, saga_id: str) -> str | None:
    return await state_of(system.engines["orchestrator"], saga_id)


async def replays_of(broker: InProcessBroker, dead_letter: str) -> int:
    """How many records on order-created say they replay ``dead_letter``."""
    limits = ReadLimits(patience=1.0, quiet=0.2)
    found = 0
    async with contextlib.aclosing(read_topics(broker, [topics.ORDER_CREATED], limits)) as records:
        async for record in records:
            found += record.headers.get(h.DLQ_REPLAYED_FROM) == dead_letter
    return found


async def test_an_operator_finds_reads_and_acts_on_sagas_in_the_console(tmp_path: Path) -> None:
    broker = LossyBroker()
    async with (
        EmbeddedSystem(tmp_path / "system", SETTINGS, broker=broker) as system,
        api_of(system) as api,
        serving(system.admin_app) as base,
        chromium() as browser,
    ):
        engine = system.engines["orchestrator"]
        placed = {}
        for name, (user, product, quantity) in {
            "completed": COMPLETED,
            "no_stock": NO_STOCK,
            "no_money": NO_MONEY,
        }.items():
            order = await api.place(user, product, quantity)
            placed[name] = str((await api.wait(order["orderID"], timeout=30))["orderID"])
        # Payment's answers are lost: its deadline passes, and the cancellations it
        # acknowledges are lost too, until the saga parks.
        broker.losing |= {topics.PAYMENT_PROCESSED, topics.PAYMENT_CANCELLED}
        parked = str((await api.place(*PARKED))["orderID"])

        async def is_parked() -> bool:
            return await saga_state(system, parked) == "PARKED"

        await until_async(is_parked, 30, f"saga {parked} PARKED")
        broker.losing.clear()
        poison = OutgoingMessage(topics.ORDER_CREATED, str(uuid4()), UNREADABLE)
        await broker.producer().send_batch([poison])

        async with console_page(browser) as page:
            console = Console(page, base)
            await console.sign_in(tokens().operator())
            await console.overview()
            assert await console.figure("parked") == "1"
            assert await console.count_of("PARKED") == "1"
            assert await console.count_of("COMPLETED") == "1"
            assert await console.count_of("CANCELLED") == "2"
            await screenshot(page, tmp_path, "overview-laptop")

            # The search, a page of one at a time; a bad filter is named.
            await page.goto(f"{base}/console/#/search?state=CANCELLED&limit=1")
            assert await console.answer() == "2 sagas match"
            first = await console.found()
            await console.next_page()
            second = await console.found()
            assert sorted(first + second) == sorted([placed["no_stock"], placed["no_money"]])
            await console.search(**{"State": "PARKED"})
            assert await console.found() == [parked]
            await screenshot(page, tmp_path, "search-laptop")
            await console.search(**{"Older than": "a while"})
            assert "422" in await console.answer()
            assert "older_than" in await console.answer()

            shown = await check_saga_page(console, engine, placed["completed"])
            assert topics_of(shown, "message_out") == [
                topics.RESERVE_PRODUCT,
                topics.PROCESS_PAYMENT,
                topics.ORDER_UPDATED,
            ]
            assert topics_of(shown, "message_in") == [
                topics.ORDER_CREATED,
                topics.PRODUCT_RESERVED,
                topics.PAYMENT_PROCESSED,
                topics.ORDER_STATUS_APPLIED,
            ]
            await screenshot(page, tmp_path, "saga-laptop")
            assert await console.actions() == []

            shown = await check_saga_page(console, engine, placed["no_stock"])
            assert topics.PROCESS_PAYMENT not in topics_of(shown, "message_out")
            shown = await check_saga_page(console, engine, placed["no_money"])
            assert topics_of(shown, "compensation_attempt") == [topics.CANCEL_PRODUCT_RESERVATION]

            shown = await check_saga_page(console, engine, parked)
            assert topics_of(shown, "compensation_attempt") == [topics.CANCEL_PAYMENT] * 3
            assert "deadline_fired" in {event.kind for event in shown}
            assert await console.listed("compensations") == ["process_payment", "reserve_stock"]
            await screenshot(page, tmp_path, "saga-parked-laptop")
            assert await console.actions() == ["Retry…"]

            answer = await console.act("Retry…", "Retry", "payment is back")
            assert "COMPENSATING" in answer or "CANCELLED" in answer, answer
            await console.wait_for_state("CANCELLED")
            assert await saga_state(system, parked) == "CANCELLED"
            assert (await api.get(parked))["status"] == "ORDER_CANCELLED"
            actions = [e for e in await console.timeline() if e.kind == "operator_action"]
            assert len(actions) == 1

            await console.dead_letters()
            letters = await console.dead_letter_rows()
            assert len(letters) == 1, letters
            [letter] = letters
            assert await console.show_dead_letter(letter) == UNREADABLE.decode()
            await screenshot(page, tmp_path, "dead-letters-laptop")
            answer = await console.act("Replay…", "Replay", "checking the replay")
            assert f"Replayed {letter}" in answer, answer
            assert await replays_of(broker, letter) == 1

            # Stock's answer is lost: the saga waits at its first step, before the pivot.
            broker.losing.add(topics.PRODUCT_RESERVED)
            waiting = str((await api.place(*COMPLETED))["orderID"])

            async def is_waiting() -> bool:
                return await saga_state(system, waiting) == "RUNNING"

            await until_async(is_waiting, 30, f"saga {waiting} RUNNING")
            await console.find(waiting)
            await console.open_found(waiting)
            assert await console.listed("remaining") == [
                "reserve_stock",
                "process_payment",
                "update_order",
            ]
            assert await console.actions() == ["Cancel saga…"]
            answer = await console.act("Cancel saga…", "Cancel the saga", "the customer called")
            assert "COMPENSATING" in answer, answer
            await console.wait_for_state("CANCELLED")
            assert (await api.get(waiting))["status"] == "ORDER_CANCELLED"
            broker.losing.clear()

        async with console_page(browser, PHONE) as page:
            console = Console(page, base)
            await console.sign_in(tokens().operator())
            await console.overview()
            await screenshot(page, tmp_path, "overview-phone")
            await console.find(placed["completed"])
            await console.open_found(placed["completed"])
            await screenshot(page, tmp_path, "saga-phone")
        await assert_invariants(system)
    await broker.close()

"""The console as an operator uses it, through its labels and buttons, for the tests.

Every read here is of what the page shows: nothing is asked of the admin API directly.
"""

from dataclasses import dataclass
from typing import Any

from playwright.async_api import Locator, Page, expect

# Generous: the page polls every 2 s and the sagas run in other processes on a busy machine.
WAIT_MS = 30_000


@dataclass(frozen=True)
class Shown:
    """One event of the timeline as the page draws it."""

    kind: str
    service: str
    topic: str
    partition: str
    offset: str
    message_id: str
    from_state: str
    to_state: str
    step: str


@dataclass
class Console:
    page: Page
    base: str
    """The admin process's base URL: http://127.0.0.1:PORT."""

    async def sign_in(self, token: str) -> None:
        """Open the console without a token, as a new tab does: it asks for one; give it."""
        await self.page.goto(f"{self.base}/console")
        form = self.page.locator("#sign-in")
        await expect(form).to_be_visible(timeout=WAIT_MS)
        await self.page.get_by_label("Operator token").fill(token)
        await self.page.get_by_role("button", name="Use this token").click()
        await expect(form).to_be_hidden(timeout=WAIT_MS)
        await expect(self.page.locator("[data-figure=unfinished]")).to_be_visible(timeout=WAIT_MS)

    async def overview(self) -> None:
        await self.page.goto(f"{self.base}/console")
        await expect(self.page.locator("[data-figure=unfinished]")).to_be_visible(timeout=WAIT_MS)

    async def figure(self, name: str) -> str:
        return await self.page.locator(f"[data-figure={name}]").inner_text()

    async def count_of(self, state: str) -> str:
        return await self.page.locator(f"[data-count={state}]").inner_text()

    async def search(self, **fields: str) -> None:
        """Fill the search form's fields by their labels and search."""
        await self.page.goto(f"{self.base}/console/#/search")
        for label, value in fields.items():
            control = self.page.get_by_label(label, exact=True)
            if await control.evaluate("c => c.tagName") == "SELECT":
                await control.select_option(value)
            else:
                await control.fill(value)
        await self.page.get_by_role("button", name="Search").click()

    async def _results(self) -> Locator:
        """The results of the search the location asks for (not those of the one before)."""
        query = await self.page.evaluate("new URLSearchParams(location.hash.split('?')[1])+''")
        results = self.page.locator(f'.results[data-query="{query}"][aria-busy=false]')
        await expect(results).to_have_count(1, timeout=WAIT_MS)
        return results

    async def found(self) -> list[str]:
        """The sagas the search shows."""
        rows = (await self._results()).locator("tr[data-saga]")
        return [str(r) for r in await rows.evaluate_all("rs => rs.map(r => r.dataset.saga)")]

    async def answer(self) -> str:
        """What the search says it found, or why it was refused."""
        return await (await self._results()).locator(".count, .error").inner_text()

    async def next_page(self) -> None:
        await self.page.get_by_role("link", name="Next page").click()

    async def find(self, order_id: str) -> None:
        """Search by order id; the one saga found is the order's."""
        await self.search(**{"Order id": order_id})
        assert await self.answer() == "1 saga matches"
        assert await self.found() == [order_id]

    async def open_found(self, saga_id: str) -> None:
        """Follow the search result's link to the saga's page."""
        await self.page.locator(f"tr[data-saga='{saga_id}'] a").click()
        await expect(self.page.locator(f"[data-saga-id='{saga_id}']")).to_be_visible(
            timeout=WAIT_MS
        )
        await expect(self.page.locator("li.event").first).to_be_visible(timeout=WAIT_MS)

    async def state(self) -> str:
        return await self.page.locator(".state-line .badge").inner_text()

    async def wait_for_state(self, state: str, timeout_ms: float = WAIT_MS) -> None:
        """Wait until the open saga's page, refreshing itself, shows ``state``."""
        badge = self.page.locator(".state-line .badge")
        await expect(badge).to_have_text(state, timeout=timeout_ms)

    async def timeline(self) -> list[Shown]:
        rows: list[dict[str, Any]] = await self.page.locator("li.event").evaluate_all(
            "rows => rows.map(row => ({...row.dataset}))"
        )
        return [
            Shown(
                kind=row["kind"],
                service=row["service"],
                topic=row["topic"],
                partition=row["partition"],
                offset=row["offset"],
                message_id=row["messageId"],
                from_state=row["fromState"],
                to_state=row["toState"],
                step=row["step"],
            )
            for row in rows
        ]

    async def listed(self, which: str) -> list[str]:
        """The names in the plan's ``remaining`` or ``compensations`` list."""
        items = self.page.locator(f"[data-list={which}] li")
        return [str(name) for name in await items.evaluate_all("l => l.map(i => i.dataset.name)")]

    async def actions(self) -> list[str]:
        """The actions the open saga's page offers."""
        return [str(t) for t in await self.page.locator(".actions button").all_inner_texts()]

    async def act(self, button: str, confirm: str, reason: str) -> str:
        """Press ``button``, give the reason, confirm with ``confirm``; the page's answer."""
        await self.page.get_by_role("button", name=button).click()
        dialog = self.page.get_by_role("dialog")
        await expect(dialog).to_be_visible()
        await dialog.get_by_label("Reason (recorded in the audit trail)").fill(reason)
        await dialog.get_by_role("button", name=confirm, exact=True).click()
        await expect(dialog).to_have_count(0)
        toast = self.page.locator("#toast .toast")
        await expect(toast).to_be_visible(timeout=WAIT_MS)
        return await toast.inner_text()

    async def dead_letters(self, topic: str = "") -> None:
        suffix = f"?topic={topic}" if topic else ""
        await self.page.goto(f"{self.base}/console/#/dead-letters{suffix}")
        await expect(self.page.locator(".count")).to_be_visible(timeout=WAIT_MS)

    async def dead_letter_rows(self) -> list[str]:
        rows = self.page.locator("tr[data-letter]")
        return [str(a) for a in await rows.evaluate_all("rs => rs.map(r => r.dataset.letter)")]

    async def show_dead_letter(self, address: str) -> str:
        """Open the dead letter; its payload as shown."""
        await self.page.get_by_role("button", name=f"Show {address}").click()
        payload = self.page.locator("[data-payload]")
        await expect(payload).to_be_visible(timeout=WAIT_MS)
        return await payload.inner_text()

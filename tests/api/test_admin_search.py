"""The admin API's search and counts on the embedded system: every filter, the sort,
the pages, and bad parameters answered 422 naming them."""

from pathlib import Path
from typing import Any

from tests.api.admin_support import Placed, Running, place_one_of_each, running


async def ids(run: Running, **params: Any) -> list[str]:
    page = await run.get("/admin/v1/sagas", **params)
    assert page["total"] == len(page["items"]) or page["next_cursor"] is not None
    return [s["saga_id"] for s in page["items"]]


async def test_search_by_every_filter(tmp_path: Path) -> None:
    async with running(tmp_path) as run:
        p: Placed = await place_one_of_each(run)
        everyone = {p.completed, p.stock_cancelled, p.payment_cancelled, p.parked}

        assert set(await ids(run)) == everyone
        assert await ids(run, order_id=p.payment_cancelled) == [p.payment_cancelled]
        assert await ids(run, order_id=p.payment_cancelled.upper()) == [p.payment_cancelled]
        assert set(await ids(run, user_id=1)) == {p.completed, p.payment_cancelled, p.parked}
        assert await ids(run, user_id=2) == [p.stock_cancelled]
        assert await ids(run, user_id=3) == []
        assert await ids(run, state="completed") == [p.completed]
        assert set(await ids(run, state="CANCELLED")) == {p.stock_cancelled, p.payment_cancelled}
        assert await ids(run, parked="true") == [p.parked]
        assert p.parked not in await ids(run, parked="false")
        # The parked saga is stuck undoing reserve_stock; the finished ones are past it.
        assert await ids(run, step="reserve_stock") == [p.parked]
        assert set(await ids(run, step="update_order")) == everyone - {p.parked}
        assert await ids(run, reason="INSUFFICIENT STOCK") == [p.stock_cancelled]
        assert set(await ids(run, reason="payment")) == {p.payment_cancelled, p.parked}
        assert set(await ids(run, newer_than="1h")) == everyone
        assert await ids(run, older_than="1h") == []

        page = await run.get(f"/admin/v1/sagas/{p.parked}")
        summary = page["saga"]
        assert summary["order_id"] == p.parked and summary["user_id"] == 1
        assert summary["state"] == "PARKED" and summary["step_name"] == "reserve_stock"


async def test_sorted_and_paged(tmp_path: Path) -> None:
    async with running(tmp_path) as run:
        p = await place_one_of_each(run)
        placed = [p.completed, p.stock_cancelled, p.payment_cancelled, p.parked]

        assert await ids(run, sort="created_at", order="asc") == placed
        assert await ids(run, sort="created_at", order="desc") == placed[::-1]
        by_state = await run.get("/admin/v1/sagas", sort="state", order="asc")
        states = [s["state"] for s in by_state["items"]]
        assert states == sorted(states)

        first = await run.get("/admin/v1/sagas", order="asc", limit=3)
        assert first["total"] == 4 and len(first["items"]) == 3
        assert first["next_cursor"] is not None
        second = await run.get("/admin/v1/sagas", order="asc", limit=3, cursor=first["next_cursor"])
        assert [s["saga_id"] for s in first["items"] + second["items"]] == placed
        assert second["next_cursor"] is None and second["total"] == 4


async def test_counts_by_state_the_parked_and_the_oldest_unfinished(tmp_path: Path) -> None:
    async with running(tmp_path) as run:
        empty = await run.get("/admin/v1/sagas/counts")
        assert empty["unfinished"] == 0 and empty["oldest_unfinished"] is None
        p = await place_one_of_each(run)

        counts = await run.get("/admin/v1/sagas/counts")
        assert counts["by_state"] == {
            "RUNNING": 0,
            "COMPENSATING": 0,
            "PARKED": 1,
            "NOTIFYING": 0,
            "COMPLETED": 1,
            "CANCELLED": 2,
        }
        assert counts["unfinished"] == 1 and counts["parked"] == 1
        assert counts["oldest_unfinished"]["saga_id"] == p.parked
        assert counts["finished_last_minute"] == 3


BAD = [
    ({"limit": "0"}, "limit"),
    ({"limit": "many"}, "limit"),
    ({"limit": "501"}, "limit"),
    ({"state": "LOST"}, "state"),
    ({"older_than": "yesterday"}, "older_than"),
    ({"newer_than": "5 minutes"}, "newer_than"),
    ({"parked": "perhaps"}, "parked"),
    ({"user_id": "bob"}, "user_id"),
    ({"sort": "price"}, "sort"),
    ({"order": "up"}, "order"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"step": "ship_it"}, "step"),
]


async def test_a_bad_parameter_is_422_naming_it(tmp_path: Path) -> None:
    async with running(tmp_path) as run:
        for query, parameter in BAD:
            response = await run.admin.get("/admin/v1/sagas", params=query)
            assert response.status_code == 422, (query, response.text)
            body = response.json()
            assert [e["parameter"] for e in body["errors"]] == [parameter], query
            assert body["detail"].startswith(f"{parameter}: "), query


async def test_the_openapi_document_and_no_docs_page_that_would_need_a_cdn(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as run:
        document = await run.get("/admin/openapi.json")
        docs = await run.admin.get("/admin/docs")
    assert {
        "/admin/v1/sagas",
        "/admin/v1/sagas/counts",
        "/admin/v1/sagas/{saga_id}",
        "/admin/v1/sagas/{saga_id}/retry",
        "/admin/v1/sagas/{saga_id}/cancel",
        "/admin/v1/dead-letters",
        "/admin/v1/dead-letters/{topic}/{partition}/{offset}",
        "/admin/v1/dead-letters/{topic}/{partition}/{offset}/replay",
        "/admin/v1/audit",
    } <= set(document["paths"])
    assert docs.status_code == 404

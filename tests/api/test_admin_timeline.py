"""The admin API's saga page: each saga's timeline against what the orchestrator's
database and the broker hold, for sagas that completed, were cancelled by stock or by
payment, or parked; and ``ordersaga sagas show --json`` telling the same history."""

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from ordersaga.cli.sagas import sagas_app
from ordersaga.contracts import headers as h
from tests.api.admin_support import Running, place_one_of_each, running


def events(page: dict[str, Any], *kinds: str) -> list[dict[str, Any]]:
    return [e for e in page["timeline"] if e["kind"] in kinds]


def topics_of(page: dict[str, Any], *kinds: str) -> list[str]:
    return [e["topic"] for e in events(page, *kinds)]


async def check_against_the_database(run: Running, saga_id: str) -> dict[str, Any]:
    """The saga's page; every message in and out, and every transition, is as stored,
    and every message is on the broker where the timeline says."""
    page = await run.get(f"/admin/v1/sagas/{saga_id}")
    rows = await run.history_rows(saga_id)
    received = [
        (r["source_topic"], r["source_partition"], r["source_offset"], r["message_id"])
        for r in rows
        if r["source_topic"]
    ]
    assert [
        (e["topic"], e["partition"], e["offset"], e["message_id"])
        for e in events(page, "message_in")
    ] == received
    sent = [(s["topic"], s["message_id"]) for r in rows for s in json.loads(r["sent"] or "[]")]
    assert [
        (e["topic"], e["message_id"]) for e in events(page, "message_out", "compensation_attempt")
    ] == sent
    changed = [(r["from_status"], r["to_status"]) for r in rows if r["outcome"] != "ignored"]
    assert [(e["from_state"], e["to_state"]) for e in events(page, "transition")] == changed
    for event in events(page, "message_in"):
        record = next(
            r
            for r in run.broker.records(event["topic"])
            if (r.partition, r.offset) == (event["partition"], event["offset"])
        )
        assert record.headers[h.MESSAGE_ID] == event["message_id"]
        assert record.headers.get(h.CAUSATION_ID, "") == (event["causation_id"] or "")
    for event in events(page, "message_out", "compensation_attempt"):
        on_topic = [r.headers[h.MESSAGE_ID] for r in run.broker.records(event["topic"])]
        assert event["message_id"] in on_topic
        assert event["causation_id"] in (None, *[e["message_id"] for e in page["timeline"]])
    return page


async def test_each_timeline_is_what_the_database_and_the_broker_hold(tmp_path: Path) -> None:
    async with running(tmp_path) as run:
        placed = await place_one_of_each(run)

        completed = await check_against_the_database(run, placed.completed)
        assert topics_of(completed, "message_in") == [
            "order-created",
            "product-reserved",
            "payment-processed",
            "order-status-applied",
        ]
        assert topics_of(completed, "message_out") == [
            "reserve-product",
            "process-payment",
            "order-updated",
        ]
        assert [e["service"] for e in events(completed, "message_in")] == [
            "order",
            "stock",
            "payment",
            "order",
        ]
        assert events(completed, "transition")[-1]["to_state"] == "COMPLETED"
        assert completed["remaining_steps"] == [] and completed["compensation_plan"] == []

        by_stock = await check_against_the_database(run, placed.stock_cancelled)
        assert topics_of(by_stock, "message_in") == [
            "order-created",
            "product-reserved",
            "order-status-applied",
        ]
        assert topics_of(by_stock, "compensation_attempt") == []
        assert events(by_stock, "transition")[-1]["to_state"] == "CANCELLED"

        by_payment = await check_against_the_database(run, placed.payment_cancelled)
        assert topics_of(by_payment, "message_in") == [
            "order-created",
            "product-reserved",
            "payment-processed",
            "product-reservation-cancelled",
            "order-status-applied",
        ]
        assert topics_of(by_payment, "compensation_attempt") == ["cancel-product-reservation"]
        assert [e["service"] for e in events(by_payment, "compensation_attempt")] == ["stock"]
        assert events(by_payment, "transition")[-1]["to_state"] == "CANCELLED"

        parked = await check_against_the_database(run, placed.parked)
        assert topics_of(parked, "compensation_attempt") == ["cancel-product-reservation"] * 3
        # Each unanswered send's deadline fired: two sends again, then the park.
        assert len(events(parked, "deadline_fired")) == 3
        assert len(events(parked, "deadline_set")) >= 3
        assert events(parked, "transition")[-1]["to_state"] == "PARKED"
        assert parked["saga"]["parked"] is True
        assert (
            "cancel-product-reservation not acknowledged after 3 attempts"
            in (parked["saga"]["reason"])
        )


def _normal(timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Times as instants, so "…Z" and "…+00:00" compare equal."""
    return [{**e, "at": datetime.fromisoformat(e["at"])} for e in timeline]


async def test_the_command_line_and_the_api_tell_the_same_history(tmp_path: Path) -> None:
    async with running(tmp_path) as run:
        placed = await place_one_of_each(run)
        for saga_id in (placed.completed, placed.payment_cancelled, placed.parked):
            page = await run.get(f"/admin/v1/sagas/{saga_id}")
            shown = await asyncio.to_thread(
                CliRunner().invoke,
                sagas_app,
                ["show", saga_id, "--json", "--data-dir", str(tmp_path)],
            )
            assert shown.exit_code == 0, shown.output
            document = json.loads(shown.output)
            assert _normal(document["timeline"]) == _normal(page["timeline"])
            assert len(page["timeline"]) > len(document["history"])

        human = await asyncio.to_thread(
            CliRunner().invoke,
            sagas_app,
            ["show", placed.parked, "--data-dir", str(tmp_path)],
            env={"COLUMNS": "250"},
        )
        assert human.exit_code == 0, human.output
        lines = human.output[human.output.index("Timeline") :].splitlines()
        attempts = [line for line in lines if "compensation_attempt" in line]
        assert len(attempts) == 3 and all("cancel-product-reservation" in a for a in attempts)

        for options, api_filters in (
            (["--user-id", "2"], {"user_id": 2}),
            (["--parked"], {"parked": "true"}),
            (
                ["--step", "update_order", "--reason-contains", "funds"],
                {"step": "update_order", "reason": "funds"},
            ),
        ):
            listed = await asyncio.to_thread(
                CliRunner().invoke,
                sagas_app,
                ["list", *options, "--json", "--data-dir", str(tmp_path)],
            )
            assert listed.exit_code == 0, listed.output
            from_cli = [s["saga_id"] for s in json.loads(listed.output)["sagas"]]
            page = await run.get("/admin/v1/sagas", **api_filters)
            assert from_cli == [s["saga_id"] for s in page["items"]] != []

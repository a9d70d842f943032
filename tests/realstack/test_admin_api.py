"""The admin API as deployed: every orchestrator replica under ``ordersaga up`` serves it
on the shared admin port, on PostgreSQL, to operator tokens."""

import subprocess
import time

import httpx

from tests.auth_support import operator_headers
from tests.realstack.stack import CLI, Stack
from tests.realstack.test_real_stack import assert_verified, place, wait_all


def test_the_orchestrator_replicas_serve_search_and_timelines(stack: Stack) -> None:
    with open(stack.logs / "up.log", "ab") as log:
        supervisor = subprocess.Popen(
            [*CLI, "up", "--replicas", "2"],
            env={**stack.env, "COLUMNS": "250", "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    stack.processes["up"] = supervisor  # so a failure shows its log and it is stopped
    stack.wait_ready(timeout=240)  # eight processes starting at once
    said = f"admin API and console on http://127.0.0.1:{stack.admin_port}"
    deadline = time.monotonic() + 120
    while (stack.logs / "up.log").read_text(errors="replace").count(said) < 2:
        assert time.monotonic() < deadline, stack.log_tails()
        time.sleep(0.2)
    assert "(operator tokens required)" in (stack.logs / "up.log").read_text()

    with httpx.Client(base_url=stack.api, timeout=10, headers=operator_headers()) as http:
        completed = place(http, user=1, product=1, quantity=1)["orderID"]
        wait_all(http, [completed])
        no_money = place(http, user=1, product=3, quantity=2)["orderID"]  # 100 > 80 left
        wait_all(http, [no_money])
    assert_verified(stack)

    with httpx.Client(base_url=stack.admin, timeout=10, headers=operator_headers()) as admin:
        # Several connections, so both replicas answer (the kernel spreads them).
        for _ in range(4):
            with httpx.Client(
                base_url=stack.admin, timeout=10, headers=operator_headers()
            ) as fresh:
                found = fresh.get("/admin/v1/sagas", params={"user_id": 1, "order": "asc"})
                assert found.status_code == 200, found.text
                assert [s["saga_id"] for s in found.json()["items"]] == [completed, no_money]
        cancelled = admin.get("/admin/v1/sagas", params={"state": "CANCELLED"}).json()
        assert [s["saga_id"] for s in cancelled["items"]] == [no_money]

        page = admin.get(f"/admin/v1/sagas/{no_money}").json()
        received = [e for e in page["timeline"] if e["kind"] == "message_in"]
        assert [e["topic"] for e in received] == [
            "order-created",
            "product-reserved",
            "payment-processed",
            "product-reservation-cancelled",
            "order-status-applied",
        ]
        assert all(e["partition"] is not None and e["offset"] is not None for e in received)
        assert all(e["message_id"] for e in received)
        undone = [e["topic"] for e in page["timeline"] if e["kind"] == "compensation_attempt"]
        assert undone == ["cancel-product-reservation"]
        assert page["saga"]["state"] == "CANCELLED"

        counts = admin.get("/admin/v1/sagas/counts").json()
        assert counts["by_state"]["COMPLETED"] == 1 and counts["by_state"]["CANCELLED"] == 1
        assert admin.get("/admin/openapi.json").status_code == 200

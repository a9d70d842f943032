"""The admin API's actions on the embedded system: retry a parked saga, cancel one
before its pivot, refuse both otherwise; what a live saga will still do, read from its
definition; every action in the audit trail and on the saga's timeline."""

from pathlib import Path
from typing import Any

from ordersaga.contracts import topics
from ordersaga.saga.definition import StepKind
from ordersaga.services.orchestrator.place_order import PLACE_ORDER
from ordersaga.tools.verify import verify
from tests.api.admin_support import OPERATOR, Running, place_one_of_each, running
from tests.support import until_async


async def post(run: Running, path: str, reason: str | None = "checked with the customer") -> Any:
    body = {} if reason is None else {"reason": reason}
    return await run.admin.post(path, json=body)


async def wait_for_history_of(run: Running, saga_id: str, topic: str) -> None:
    async def seen() -> bool:
        return any(r["source_topic"] == topic for r in await run.history_rows(saga_id))

    await until_async(seen, 10, f"saga {saga_id} receiving {topic}")


async def test_a_parked_saga_retried_runs_to_its_end_and_the_retry_is_audited(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as run:
        p = await place_one_of_each(run)

        answer = await post(run, f"/admin/v1/sagas/{p.parked}/retry", "stock is answering again")
        assert answer.status_code == 200, answer.text
        done = answer.json()
        assert done["saga"]["state"] == "COMPENSATING"
        assert done["audit"]["actor"] == OPERATOR and done["audit"]["action"] == "retry"
        assert done["audit"]["reason"] == "stock is answering again"

        await run.wait_for_status(p.parked, "CANCELLED")
        order = await run.orders.wait(p.parked, timeout=10)
        assert order["status"] == "ORDER_CANCELLED"
        assert await run.system.wait_until_quiet(timeout=10)
        assert all(check.ok for check in await verify(run.system.engines))

        audit = await run.get("/admin/v1/audit", saga_id=p.parked)
        assert [(a["action"], a["saga_id"], a["actor"]) for a in audit] == [
            ("retry", p.parked, OPERATOR)
        ]
        page = await run.get(f"/admin/v1/sagas/{p.parked}")
        [action] = [e for e in page["timeline"] if e["kind"] == "operator_action"]
        assert action["actor"] == OPERATOR and action["reason"] == "stock is answering again"
        after = page["timeline"][page["timeline"].index(action) + 1 :]
        assert [e["kind"] for e in after][:2] == ["transition", "compensation_attempt"]
        assert [e["to_state"] for e in after if e["kind"] == "transition"][-1] == "CANCELLED"


async def test_retry_and_cancel_are_refused_when_the_saga_cannot_take_them(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as run:
        p = await place_one_of_each(run)

        not_parked = await post(run, f"/admin/v1/sagas/{p.completed}/retry")
        assert not_parked.status_code == 409
        assert "COMPLETED, not PARKED" in not_parked.json()["detail"]
        finished = await post(run, f"/admin/v1/sagas/{p.completed}/cancel")
        assert finished.status_code == 409
        assert "only a RUNNING saga before its pivot" in finished.json()["detail"]
        parked = await post(run, f"/admin/v1/sagas/{p.parked}/cancel")
        assert parked.status_code == 409

        unknown = await post(run, "/admin/v1/sagas/no-such-saga/retry")
        assert unknown.status_code == 404
        assert unknown.json() == {"detail": "no saga no-such-saga"}
        assert (await run.admin.get("/admin/v1/sagas/no-such-saga")).status_code == 404

        no_reason = await post(run, f"/admin/v1/sagas/{p.parked}/retry", None)
        assert no_reason.status_code == 422
        assert no_reason.json()["errors"][0]["parameter"] == "reason"
        empty = await post(run, f"/admin/v1/sagas/{p.parked}/retry", "")
        assert empty.status_code == 422

        # Nothing refused was done, nor audited.
        assert await run.get("/admin/v1/audit") == []
        assert await run.saga_status(p.parked) == "PARKED"


async def test_a_saga_cancelled_before_its_pivot_is_compensated_and_its_order_cancelled(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as run:
        run.broker.losing.add(topics.PRODUCT_RESERVED)  # stock reserves; its answer is lost
        saga_id = await run.place(1, 1, 2)
        await run.wait_for_status(saga_id, "RUNNING")

        live = await run.get(f"/admin/v1/sagas/{saga_id}")
        first, pivot = PLACE_ORDER.steps
        assert [(s["name"], s["service"], s["kind"]) for s in live["remaining_steps"]] == [
            (first.name, first.party, StepKind.COMPENSATABLE.value),
            (pivot.name, pivot.party, StepKind.PIVOT.value),
            (PLACE_ORDER.outcome_name, "order", "outcome"),
        ]
        assert live["remaining_steps"][0]["deadline"] is not None
        assert live["compensation_plan"] == [
            {
                "step": 0,
                "name": first.name,
                "service": first.party,
                "command_topic": first.compensation_topic,
            }
        ]
        run.broker.losing.clear()

        answer = await post(run, f"/admin/v1/sagas/{saga_id}/cancel", "customer called")
        assert answer.status_code == 200, answer.text
        assert answer.json()["saga"]["state"] == "COMPENSATING"
        assert answer.json()["audit"]["action"] == "cancel"

        order = await run.orders.wait(saga_id, timeout=10)
        assert order["status"] == "ORDER_CANCELLED"
        assert order["reason"] == "cancelled by an operator: customer called"
        assert await run.system.wait_until_quiet(timeout=10)
        # The reservation was released: stock is back where it was.
        assert all(check.ok for check in await verify(run.system.engines))

        page = await run.get(f"/admin/v1/sagas/{saga_id}")
        kinds = [e["kind"] for e in page["timeline"]]
        assert "operator_action" in kinds
        attempts = [e for e in page["timeline"] if e["kind"] == "compensation_attempt"]
        assert [e["topic"] for e in attempts] == [first.compensation_topic]
        assert kinds.index("operator_action") < page["timeline"].index(attempts[0])
        assert page["remaining_steps"] == [] and page["compensation_plan"] == []


async def test_a_saga_at_its_pivot_cannot_be_cancelled(tmp_path: Path) -> None:
    async with running(tmp_path) as run:
        run.broker.losing.add(topics.PAYMENT_PROCESSED)  # payment answers; it is lost
        saga_id = await run.place(1, 1, 1)
        await wait_for_history_of(run, saga_id, topics.PRODUCT_RESERVED)

        live = await run.get(f"/admin/v1/sagas/{saga_id}")
        first, pivot = PLACE_ORDER.steps
        assert [s["name"] for s in live["remaining_steps"]] == [
            pivot.name,
            PLACE_ORDER.outcome_name,
        ]
        assert [(c["name"], c["command_topic"]) for c in live["compensation_plan"]] == [
            (pivot.name, pivot.compensation_topic),
            (first.name, first.compensation_topic),
        ]

        refused = await post(run, f"/admin/v1/sagas/{saga_id}/cancel")
        assert refused.status_code == 409
        assert "process_payment, a pivot step" in refused.json()["detail"]
        assert await run.get("/admin/v1/audit") == []
        assert await run.saga_status(saga_id) == "RUNNING"

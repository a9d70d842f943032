"""The admin API's dead letters on the embedded system: a poison message the
orchestrator dead-lettered, listed, shown and replayed, the replay audited."""

from pathlib import Path
from uuid import uuid4

from ordersaga.contracts import headers as h
from ordersaga.contracts import topics
from ordersaga.messaging.port import OutgoingMessage
from tests.api.admin_support import OPERATOR, Running, running
from tests.support import until

POISON = b"this is not JSON"


async def dead_letter_one(run: Running) -> str:
    """Send a poison message to the orchestrator; its message-id, once dead-lettered."""
    message_id = str(uuid4())
    poison = OutgoingMessage(
        topics.PRODUCT_RESERVED, str(uuid4()), POISON, {h.MESSAGE_ID: message_id}
    )
    await run.broker.producer().send_batch([poison])
    dlq = topics.dead_letter(topics.PRODUCT_RESERVED)
    await until(lambda: bool(run.broker.records(dlq)), 10, "the poison message dead-lettered")
    return message_id


async def test_a_dead_letter_listed_shown_and_replayed_with_an_audit_entry(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as run:
        message_id = await dead_letter_one(run)
        dlq = topics.dead_letter(topics.PRODUCT_RESERVED)

        [listed] = await run.get("/admin/v1/dead-letters")
        assert listed["topic"] == dlq and listed["source_topic"] == topics.PRODUCT_RESERVED
        assert listed["message_id"] == message_id and listed["error"]
        assert await run.get("/admin/v1/dead-letters", topic=topics.PRODUCT_RESERVED) == [listed]
        assert await run.get("/admin/v1/dead-letters", topic=topics.ORDER_UPDATED) == []

        where = f"{dlq}/{listed['partition']}/{listed['offset']}"
        shown = await run.get(f"/admin/v1/dead-letters/{where}")
        assert shown["value"] == POISON.decode() and shown["value_json"] is None
        assert shown["headers"][h.MESSAGE_ID] == message_id

        answer = await run.admin.post(
            f"/admin/v1/dead-letters/{where}/replay", json={"reason": "fixed the producer"}
        )
        assert answer.status_code == 200, answer.text
        replay = answer.json()
        assert replay["replayed"] == where and replay["to_topic"] == topics.PRODUCT_RESERVED
        assert replay["message_id"] == message_id
        replayed = [
            r
            for r in run.broker.records(topics.PRODUCT_RESERVED)
            if r.headers.get(h.DLQ_REPLAYED_FROM) == where
        ]
        assert [r.value for r in replayed] == [POISON]

        [entry] = await run.get("/admin/v1/audit")
        assert entry["action"] == "replay" and entry["dead_letter"] == where
        assert entry["actor"] == OPERATOR and entry["reason"] == "fixed the producer"
        assert entry["saga_id"] is None


async def test_dead_letters_that_are_not_there_or_topics_that_are_none(tmp_path: Path) -> None:
    async with running(tmp_path) as run:
        dlq = topics.dead_letter(topics.ORDER_UPDATED)
        missing = await run.admin.get(f"/admin/v1/dead-letters/{dlq}/0/7")
        assert missing.status_code == 404
        assert missing.json()["detail"] == f"no record at {dlq}/0/7"

        unknown = await run.admin.get("/admin/v1/dead-letters", params={"topic": "parcels"})
        assert unknown.status_code == 422
        assert unknown.json()["errors"][0]["parameter"] == "topic"

        not_dlq = await run.admin.get(f"/admin/v1/dead-letters/{topics.ORDER_UPDATED}/0/0")
        assert not_dlq.status_code == 422
        assert "order-updated.DLQ" in not_dlq.json()["detail"]

        negative = await run.admin.get(f"/admin/v1/dead-letters/{dlq}/-1/0")
        assert negative.status_code == 422
        assert negative.json()["errors"][0]["parameter"] == "partition"

        no_reason = await run.admin.post(f"/admin/v1/dead-letters/{dlq}/0/0/replay", json={})
        assert no_reason.status_code == 422
        assert await run.get("/admin/v1/audit") == []

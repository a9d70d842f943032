"""The admin API's work: the operator's saga operations and the dead letters, as the
API's models. No query logic here: it is the operations' and the dead letters' own."""

import json
from dataclasses import asdict, dataclass
from typing import Any

from ordersaga.contracts import headers as h
from ordersaga.messaging.dead_letters import (
    DLQ_TOPICS,
    DeadLetter,
    ReadLimits,
    dead_letter_topic,
    find_dead_letter,
    inspect,
    replay,
)
from ordersaga.messaging.port import Broker
from ordersaga.saga.audit import REPLAY, AuditEntry
from ordersaga.saga.search import SagaQuery
from ordersaga.saga.state import SagaStatus
from ordersaga.services.orchestrator.admin import models as m
from ordersaga.services.orchestrator.admin.operator import Operator
from ordersaga.services.orchestrator.operations import SagaOperations, SagaView


@dataclass(frozen=True)
class SagaAdmin:
    """The sagas of ``operations`` and the dead letters on ``broker``, read within
    ``limits``."""

    operations: SagaOperations
    broker: Broker
    limits: ReadLimits

    async def search(self, query: SagaQuery, step: str | None) -> m.SagaPage:
        page = await self.operations.search(query, step)
        return m.SagaPage(
            items=[summary(s) for s in page.sagas], next_cursor=page.next_cursor, total=page.total
        )

    async def counts(self) -> m.SagaCounts:
        seen = await self.operations.overview()
        oldest = seen.oldest_unfinished
        return m.SagaCounts(
            by_state={state.value: n for state, n in seen.by_state.items()},
            unfinished=seen.unfinished,
            parked=seen.parked,
            oldest_unfinished=None if oldest is None else summary(oldest),
            finished_last_minute=seen.finished_last_minute,
        )

    async def detail(self, saga_id: str) -> m.SagaPageDetail:
        shown = await self.operations.show(saga_id)
        return m.SagaPageDetail(
            saga=m.SagaWithData(**summary(shown.saga).model_dump(), data=shown.saga.data),
            timeline=[m.Event.model_validate(asdict(e)) for e in shown.timeline],
            remaining_steps=[
                m.RemainingStep(
                    step=s.step, name=s.name, service=s.party, kind=s.kind, deadline=s.deadline
                )
                for s in shown.steps_ahead
            ],
            compensation_plan=[
                m.PlannedCompensation(
                    step=c.step, name=c.name, service=c.party, command_topic=c.topic
                )
                for c in shown.compensation_plan
            ],
        )

    async def retry(self, saga_id: str, operator: Operator, reason: str) -> m.ActionResult:
        done = await self.operations.retry(saga_id, actor=operator.subject, reason=reason)
        return m.ActionResult(saga=summary(done.saga), audit=audit_entry(done.audit))

    async def cancel(self, saga_id: str, operator: Operator, reason: str) -> m.ActionResult:
        done = await self.operations.cancel(saga_id, actor=operator.subject, reason=reason)
        return m.ActionResult(saga=summary(done.saga), audit=audit_entry(done.audit))

    async def audit(self, saga_id: str | None, limit: int) -> list[m.AuditEntryOut]:
        entries = await self.operations.audit_entries(saga_id, limit)
        return [audit_entry(e) for e in entries]

    async def dead_letters(self, topic: str | None, limit: int) -> list[m.DeadLetterSummary]:
        names = [dead_letter_topic(topic, source_ok=True)] if topic else DLQ_TOPICS
        found = await inspect(self.broker, names, self.limits)
        return [letter_summary(letter) for letter in found.letters[:limit]]

    async def dead_letter(self, topic: str, partition: int, offset: int) -> m.DeadLetterDetail:
        name = dead_letter_topic(topic)
        letter = await find_dead_letter(self.broker, name, partition, offset, self.limits)
        return letter_detail(letter)

    async def replay(
        self, topic: str, partition: int, offset: int, operator: Operator, reason: str
    ) -> m.ReplayResult:
        """Publish the dead letter again to its source topic (keeping its message-id, so
        a replay is applied at most once), then record it."""
        name = dead_letter_topic(topic)
        letter = await find_dead_letter(self.broker, name, partition, offset, self.limits)
        [sent] = await replay(self.broker, [letter])
        entry = await self.operations.record(
            actor=operator.subject,
            action=REPLAY,
            reason=reason,
            outcome=f"replayed to {sent.topic}",
            dead_letter=letter.address,
        )
        return m.ReplayResult(
            replayed=letter.address,
            to_topic=sent.topic,
            message_id=sent.headers.get(h.MESSAGE_ID),
            audit=audit_entry(entry),
        )


def summary(saga: SagaView) -> m.SagaSummary:
    """A saga as the API lists it."""
    user = saga.data.get("userID")
    order = saga.data.get("orderID")
    return m.SagaSummary(
        saga_id=saga.saga_id,
        order_id=str(order) if order is not None else None,
        user_id=user if isinstance(user, int) else None,
        state=saga.status.value,
        step=saga.step,
        step_name=saga.step_name,
        definition=saga.definition,
        attempts=saga.attempts,
        created_at=saga.created_at,
        updated_at=saga.updated_at,
        deadline=saga.deadline,
        reason=saga.reason,
        parked=saga.status is SagaStatus.PARKED,
    )


def audit_entry(entry: AuditEntry) -> m.AuditEntryOut:
    return m.AuditEntryOut.model_validate(asdict(entry))


def letter_summary(letter: DeadLetter) -> m.DeadLetterSummary:
    record = letter.record
    return m.DeadLetterSummary(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        address=letter.address,
        source_topic=letter.source_topic,
        source_address=letter.source_address,
        key=record.key,
        error=letter.error,
        consumer=letter.consumer,
        message_id=record.headers.get(h.MESSAGE_ID) or None,
        saga_id=record.headers.get(h.SAGA_ID) or None,
    )


def letter_detail(letter: DeadLetter) -> m.DeadLetterDetail:
    value = letter.record.value.decode("utf-8", "backslashreplace")
    parsed: Any | None
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    return m.DeadLetterDetail(
        **letter_summary(letter).model_dump(),
        headers=dict(letter.record.headers),
        value=value,
        value_json=parsed,
    )

"""What a saga's transition means for the metrics: started, finished, replied, a
deadline fired, a compensation sent or acknowledged. Read off the transition itself
(its history entry and messages), so the rules in :mod:`transitions` know nothing of it."""

from collections.abc import Iterable
from datetime import datetime
from functools import cache

from ordersaga.observability.recorders import SagaMetrics
from ordersaga.saga.definition import SagaDefinition
from ordersaga.saga.state import SagaState, SagaStatus, Transition
from ordersaga.saga.transitions import DEADLINE

DEADLINE_RESULTS = {
    "timed-out": "timed_out",
    "retried": "resent",
    "parked": "parked",
    "failed": "failed",
}
"""A deadline's history outcome → the ``result`` label of a fired deadline."""


def reason_class(definition: SagaDefinition, reason: str | None) -> str:
    """The bounded class of a cancelled saga's ``reason`` (``none`` when it completed):
    which party refused (``{party}_refused``) or did not answer (``{party}_timeout``),
    as :mod:`transitions` words the reasons; ``other`` for anything else."""
    if reason is None:
        return "none"
    for step in definition.steps:
        if reason.startswith(f"{step.party} did not answer"):
            return f"{step.party}_timeout"
        if reason.startswith(f"{step.party}:"):
            return f"{step.party}_refused"
    return "other"


@cache
def _compensated_steps(definition: SagaDefinition) -> dict[str, str]:
    """Compensation topic → the name of the step it undoes."""
    return {s.compensation_topic: s.name for s in definition.steps if s.compensation_topic}


def declare(metrics: SagaMetrics, definitions: Iterable[SagaDefinition]) -> None:
    """Start the series of every deadline result and of every step of ``definitions`` at 0."""
    for definition in definitions:
        metrics.declare(
            DEADLINE_RESULTS.values(),
            (s.name for s in definition.steps),
            _compensated_steps(definition).values(),
        )


def record(
    metrics: SagaMetrics,
    definition: SagaDefinition,
    before: SagaState | None,
    transition: Transition,
    at: datetime,
    started_at: datetime,
    changed_at: datetime,
) -> None:
    """Record what ``transition`` (from ``before``) did at ``at``, for a saga started at
    ``started_at`` and last changed at ``changed_at`` (when its current step was sent)."""
    entry, after = transition.entry, transition.state
    outcome = entry.outcome
    if outcome == "ignored":
        return
    if outcome == "started":
        metrics.started()
    elif outcome == "acknowledged" and after.status.is_terminal:
        metrics.finished(
            "completed" if after.status is SagaStatus.COMPLETED else "cancelled",
            reason_class(definition, after.reason),
            (at - started_at).total_seconds(),
        )
    if entry.event == DEADLINE:
        metrics.deadline_fired(DEADLINE_RESULTS.get(outcome, "failed"))
    elif before is not None and before.step < len(definition.steps):
        step = definition.steps[before.step]
        waiting = before.status in (SagaStatus.RUNNING, SagaStatus.PARKED)
        if waiting and entry.event == step.reply_topic:
            metrics.replied(step.name, (at - changed_at).total_seconds())
        elif entry.event == step.ack_topic and outcome in ("compensated", "cancelled"):
            metrics.compensation_acknowledged(step.name)
    compensated = _compensated_steps(definition)
    for topic, _ in transition.messages:
        step_name = compensated.get(topic)
        if step_name is not None:
            metrics.compensation_sent(step_name)

"""What a live saga will still do, read from its definition: the steps ahead, and the
compensations that would run if it failed now. Pure: no I/O, nothing hard-coded.
"""

from dataclasses import dataclass
from datetime import datetime

from ordersaga.saga.definition import SagaDefinition, StepKind
from ordersaga.saga.state import SagaState, SagaStatus

OUTCOME_KIND = "outcome"
"""The kind of the last thing a saga does: announce its outcome."""


@dataclass(frozen=True)
class StepAhead:
    """A step the saga has still to take (the one under way first), with its deadline
    when it is the one under way."""

    step: int
    name: str
    party: str
    kind: str
    deadline: datetime | None


@dataclass(frozen=True)
class PlannedCompensation:
    """A compensation that would be sent: for step ``step``, to ``party`` on ``topic``."""

    step: int
    name: str
    party: str
    topic: str


def _announcing(definition: SagaDefinition, state: SagaState) -> bool:
    return state.step >= definition.outcome_step


def _compensating(definition: SagaDefinition, state: SagaState) -> bool:
    """Undoing steps: COMPENSATING, or PARKED on an unacknowledged compensation."""
    if _announcing(definition, state):
        return False
    if state.status is SagaStatus.COMPENSATING:
        return True
    step = definition.steps[state.step]
    return state.status is SagaStatus.PARKED and step.kind is not StepKind.RETRIABLE


def steps_ahead(
    definition: SagaDefinition, state: SagaState, outcome_party: str
) -> list[StepAhead]:
    """The steps a saga has still to take: for one going forward, the current step and
    those after it, then the announcement of its outcome (to ``outcome_party``); for one
    compensating or announcing, the announcement alone; none for a finished saga."""
    if state.status.is_terminal:
        return []
    outcome = StepAhead(
        definition.outcome_step, definition.outcome_name, outcome_party, OUTCOME_KIND, None
    )
    if _announcing(definition, state):
        return [StepAhead(outcome.step, outcome.name, outcome_party, OUTCOME_KIND, state.deadline)]
    if _compensating(definition, state):
        return [outcome]
    ahead = [
        StepAhead(index, step.name, step.party, step.kind.value, None)
        for index, step in enumerate(definition.steps)
        if index >= state.step
    ]
    first = ahead[0]
    ahead[0] = StepAhead(first.step, first.name, first.party, first.kind, state.deadline)
    return [*ahead, outcome]


def compensation_plan(definition: SagaDefinition, state: SagaState) -> list[PlannedCompensation]:
    """The compensations that would run if the saga failed now, in the order they would.

    A saga going forward at a step before the pivot, or at the pivot, compensates that
    step (a step that did not answer may have acted) and every one before it, last
    first; one compensating goes on from the compensation under way. Past the pivot (a
    retriable step, the outcome announced) or finished, nothing would be compensated.
    """
    if state.status.is_terminal or _announcing(definition, state):
        return []
    if definition.steps[state.step].kind is StepKind.RETRIABLE:
        return []
    if state.status is SagaStatus.NOTIFYING:
        return []
    plan: list[PlannedCompensation] = []
    for index in range(state.step, -1, -1):
        step = definition.steps[index]
        if step.compensation_topic is not None:
            plan.append(PlannedCompensation(index, step.name, step.party, step.compensation_topic))
    return plan

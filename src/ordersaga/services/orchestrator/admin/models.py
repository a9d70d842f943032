"""The admin API's request and response bodies (their shapes are the API's contract)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EventKind = Literal[
    "message_in",
    "message_out",
    "transition",
    "deadline_set",
    "deadline_fired",
    "late_reply_ignored",
    "compensation_attempt",
    "operator_action",
]
Lane = Literal["order", "orchestrator", "stock", "payment"]


class SagaSummary(BaseModel):
    """One saga as a search lists it."""

    saga_id: str
    order_id: str | None
    user_id: int | None
    state: str
    step: int
    step_name: str
    definition: str
    attempts: int
    created_at: datetime
    updated_at: datetime
    deadline: datetime | None
    reason: str | None
    parked: bool


class SagaWithData(SagaSummary):
    """One saga and the data it carries from step to step."""

    data: dict[str, Any]


class SagaPage(BaseModel):
    """A page of a search: ``next_cursor`` fetches the next one (null on the last)."""

    items: list[SagaSummary]
    next_cursor: str | None
    total: int


class SagaCounts(BaseModel):
    by_state: dict[str, int]
    unfinished: int
    parked: int
    oldest_unfinished: SagaSummary | None
    finished_last_minute: int


class Event(BaseModel):
    """One thing in a saga's timeline; null where it does not apply."""

    at: datetime
    kind: EventKind
    service: Lane
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    message_id: str | None = None
    causation_id: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    step: str | None = None
    detail: str | None = None
    actor: str | None = None
    reason: str | None = None


class RemainingStep(BaseModel):
    step: int
    name: str
    service: str
    kind: str
    deadline: datetime | None


class PlannedCompensation(BaseModel):
    step: int
    name: str
    service: str
    command_topic: str


class SagaPageDetail(BaseModel):
    """A saga, its timeline, and for a live saga what is still to come."""

    saga: SagaWithData
    timeline: list[Event]
    remaining_steps: list[RemainingStep]
    compensation_plan: list[PlannedCompensation]


class ActionBody(BaseModel):
    """Why the operator acts: recorded in the audit trail."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    saga_id: str | None
    dead_letter: str | None
    reason: str
    outcome: str


class ActionResult(BaseModel):
    saga: SagaSummary
    audit: AuditEntryOut


class DeadLetterSummary(BaseModel):
    topic: str
    partition: int
    offset: int
    address: str
    source_topic: str | None
    source_address: str
    key: str
    error: str
    consumer: str
    message_id: str | None
    saga_id: str | None


class DeadLetterDetail(DeadLetterSummary):
    headers: dict[str, str]
    value: str
    value_json: Any | None


class ReplayResult(BaseModel):
    replayed: str
    to_topic: str
    message_id: str | None
    audit: AuditEntryOut


class ProblemParameter(BaseModel):
    parameter: str
    message: str


class Problem(BaseModel):
    """What went wrong: ``detail`` says it; for a bad request, ``errors`` name the
    parameters."""

    detail: str
    errors: list[ProblemParameter] | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {
        "model": Problem,
        "description": "No bearer token, or one not accepted",
        "headers": {
            "WWW-Authenticate": {
                "description": 'Bearer, with error="invalid_token" and why when a token was sent',
                "schema": {"type": "string"},
            }
        },
    },
    403: {"model": Problem, "description": "The token has no operator role"},
    404: {"model": Problem, "description": "No such saga or dead letter"},
    409: {"model": Problem, "description": "Not in a state for this action"},
    422: {"model": Problem, "description": "A bad parameter or body, named"},
    503: {
        "model": Problem,
        "description": "Tokens cannot be verified right now (the JWKS is unreachable)",
        "headers": {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
        },
    },
}
"""The error answers every admin route may give."""

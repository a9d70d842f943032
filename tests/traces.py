"""Reading a saga's spans, whatever collected them: one trace, parented in flow order."""

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SpanView:
    """What the tests need of a span: who made it, what it is and where it hangs."""

    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    saga_id: str | None


COMPLETED_FLOW = [
    ("order", "POST /api/v1/orders"),
    ("order", "publish order-created"),
    ("orchestrator", "process order-created"),
    ("orchestrator", "publish reserve-product"),
    ("stock", "process reserve-product"),
    ("stock", "publish product-reserved"),
    ("orchestrator", "process product-reserved"),
    ("orchestrator", "publish process-payment"),
    ("payment", "process process-payment"),
    ("payment", "publish payment-processed"),
    ("orchestrator", "process payment-processed"),
    ("orchestrator", "publish order-updated"),
    ("order", "process order-updated"),
    ("order", "publish order-status-applied"),
    ("orchestrator", "process order-status-applied"),
]
"""The spans of a completed order, each the parent of the next."""

UNAFFORDABLE_FLOW = [
    *COMPLETED_FLOW[:10],
    ("orchestrator", "process payment-processed"),
    ("orchestrator", "publish cancel-product-reservation"),
    ("stock", "process cancel-product-reservation"),
    ("stock", "publish product-reservation-cancelled"),
    ("orchestrator", "process product-reservation-cancelled"),
    *COMPLETED_FLOW[11:],
]
"""The spans of an order payment rejects: the stock reserved is given back first."""


def chain(spans: Sequence[SpanView]) -> list[tuple[str, str]]:
    """``spans`` (one trace's) from its root down, each the parent of the next, as
    (service, name); fails if they do not form one chain under one root."""
    assert len({s.trace_id for s in spans}) == 1, "spans of more than one trace"
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if s.parent_id not in ids]
    assert len(roots) == 1, f"{len(roots)} roots: {[(r.service, r.name) for r in roots]}"
    children: dict[str | None, list[SpanView]] = {}
    for span in spans:
        children.setdefault(span.parent_id, []).append(span)
    walked, here = [], roots[0]
    while True:
        walked.append((here.service, here.name))
        below = children.get(here.span_id, [])
        assert len(below) <= 1, f"{here.name} has {len(below)} children: not one chain"
        if not below:
            break
        here = below[0]
    assert len(walked) == len(spans), "spans outside the chain"
    return walked

"""The Kafka ACLs follow from the services' wiring: each principal reads what its service
consumes, writes what it produces (and the dead-letter topics of what it consumes), and
nothing else."""

import uuid
from decimal import Decimal

from ordersaga.config import Settings
from ordersaga.contracts import topics
from ordersaga.contracts.messages import OrderCreated
from ordersaga.contracts.statuses import OrderStatus
from ordersaga.services.orchestrator.place_order import PLACE_ORDER, order_data
from ordersaga.services.registry import SERVICES, service_spec
from ordersaga.tools.kafka_acls import (
    DEAD_LETTER_ADMIN,
    Grant,
    acl_arguments,
    all_grants,
    dead_letter_grants,
    registry_grants,
    service_grants,
)

WRITERS = {
    topics.ORDER_CREATED: "order",
    topics.ORDER_STATUS_APPLIED: "order",
    topics.RESERVE_PRODUCT: "orchestrator",
    topics.CANCEL_PRODUCT_RESERVATION: "orchestrator",
    topics.PROCESS_PAYMENT: "orchestrator",
    topics.CANCEL_PAYMENT: "orchestrator",
    topics.ORDER_UPDATED: "orchestrator",
    topics.PRODUCT_RESERVED: "stock",
    topics.PRODUCT_RESERVATION_CANCELLED: "stock",
    topics.PAYMENT_PROCESSED: "payment",
    topics.PAYMENT_CANCELLED: "payment",
}
"""Who may write each topic of the contract: its one producer."""


def allowed(grants: list[Grant], operation: str) -> dict[str, set[str]]:
    """Principal → the topics ``operation`` is granted on."""
    found: dict[str, set[str]] = {}
    for grant in grants:
        if operation in grant.operations:
            found.setdefault(grant.principal, set()).update(grant.topics)
    return found


def test_each_topic_of_the_contract_has_exactly_one_writer_in_the_saga() -> None:
    writes = allowed(all_grants(s.spec(Settings()) for s in SERVICES), "Write")
    writers = {
        topic: sorted(p for p, granted in writes.items() if topic in granted)
        for topic in topics.ALL
    }
    assert writers == {topic: [who] for topic, who in WRITERS.items()}


def test_the_stock_principal_reads_and_writes_only_its_own_topics() -> None:
    grants = service_grants(service_spec("stock", Settings()))
    assert allowed(grants, "Read") == {
        "stock": {topics.RESERVE_PRODUCT, topics.CANCEL_PRODUCT_RESERVATION}
    }
    assert allowed(grants, "Write") == {
        "stock": {
            topics.PRODUCT_RESERVED,
            topics.PRODUCT_RESERVATION_CANCELLED,
            "reserve-product.DLQ",
            "cancel-product-reservation.DLQ",
        }
    }
    assert [g.groups for g in grants if g.groups] == [("stock-service",)]


def test_a_service_reads_what_it_consumes_and_its_group_only() -> None:
    for service in SERVICES:
        spec = service.spec(Settings())
        reads = [g for g in service_grants(spec) if "Read" in g.operations]
        assert [(set(g.topics), g.groups) for g in reads] == [
            ({s.topic for s in spec.subscriptions}, (spec.group,))
        ]


def test_the_services_together_create_every_topic_and_dead_letter_topic() -> None:
    created = allowed(registry_grants(Settings()), "Create")
    assert set().union(*created.values()) == set(topics.with_dead_letters())


def test_the_orchestrator_may_write_where_its_saga_sends() -> None:
    created = OrderCreated(
        orderID=uuid.uuid4(),
        userID=1,
        productID=1,
        quantity=1,
        amount=Decimal("20.00"),
        status=OrderStatus.ORDER_CREATED,
    )
    data = order_data(created)
    sends = {PLACE_ORDER.on_completed(data)[0], PLACE_ORDER.on_cancelled(data, "no")[0]}
    sends |= {step.do(data)[0] for step in PLACE_ORDER.steps}
    sends |= {step.undo(data)[0] for step in PLACE_ORDER.steps if step.compensation}
    writes = allowed(service_grants(service_spec("orchestrator", Settings())), "Write")
    assert sends <= writes["orchestrator"]


def test_each_grant_is_one_line_of_kafka_acls_arguments() -> None:
    grant = Grant("stock", ("Read", "Describe"), ("reserve-product",), ("stock-service",))
    assert acl_arguments([grant]) == [
        "--allow-principal User:stock --operation Read --operation Describe "
        "--topic reserve-product --group stock-service"
    ]


def test_the_admin_api_reads_every_dead_letter_and_forges_nothing_another_service_reads() -> None:
    grants = dead_letter_grants(DEAD_LETTER_ADMIN)
    assert set(grants) <= set(registry_grants(Settings()))
    assert allowed(grants, "Read")[DEAD_LETTER_ADMIN] == {topics.dead_letter(t) for t in topics.ALL}
    assert [" ".join(g.arguments()) for g in grants if g.groups] == [
        "--allow-principal User:orchestrator --operation Read --group dlq-inspector- "
        "--resource-pattern-type prefixed"
    ]
    saga = service_grants(service_spec(DEAD_LETTER_ADMIN, Settings()))
    added = allowed(grants, "Write")[DEAD_LETTER_ADMIN] - allowed(saga, "Write")[DEAD_LETTER_ADMIN]
    readers = allowed(all_grants(s.spec(Settings()) for s in SERVICES), "Read")
    for topic in added:
        assert [who for who, read in readers.items() if topic in read] == [DEAD_LETTER_ADMIN]

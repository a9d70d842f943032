"""The null chain carries a completed saga's messages, in the real flow's order."""

from ordersaga.contracts import topics
from ordersaga.tools.bench.null_chain import STAGES, completed_flow, parse_args, routes, taken


def test_a_completed_saga_is_seven_messages_in_the_real_order() -> None:
    assert completed_flow() == [
        topics.ORDER_CREATED,
        topics.RESERVE_PRODUCT,
        topics.PRODUCT_RESERVED,
        topics.PROCESS_PAYMENT,
        topics.PAYMENT_PROCESSED,
        topics.ORDER_UPDATED,
        topics.ORDER_STATUS_APPLIED,
    ]


def test_following_the_routes_walks_the_flow_through_the_stages_the_services_own() -> None:
    stage_routes = routes()
    assert set(stage_routes) == {"orchestrator", "stock", "payment"}
    owner = {topic: stage for stage, r in stage_routes.items() for topic in r}
    walked, stages = [topics.ORDER_CREATED], []
    while walked[-1] in owner:
        stage = owner[walked[-1]]
        stages.append(stage)
        walked.append(stage_routes[stage][walked[-1]])
    walked.append(topics.ORDER_STATUS_APPLIED)  # the source acknowledges the update
    assert walked == completed_flow()
    assert taken() == {"orchestrator": [topics.ORDER_STATUS_APPLIED]}
    assert stages == ["orchestrator", "stock", "orchestrator", "payment", "orchestrator"]


def test_every_stage_can_be_started() -> None:
    assert set(STAGES) == {"source", "orchestrator", "stock", "payment"}
    args = parse_args(["source", "--ready", "r", "--result", "x", "--in-flight", "7"])
    assert (args.stage, args.in_flight) == ("source", 7)

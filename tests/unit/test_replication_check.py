"""The check of the saga topics' replication: what it refuses, and how it says so."""

from types import SimpleNamespace

from ordersaga.messaging.replication import (
    ReplicationMismatch,
    TopicReplication,
    from_metadata,
    min_insync_from_configs,
    replication_problems,
)


def topic(name: str, replicas: int, min_insync: int | None = 2) -> TopicReplication:
    return TopicReplication(name, {p: replicas for p in range(6)}, min_insync)


def test_topics_as_the_settings_ask_pass() -> None:
    assert replication_problems([topic("order-created", 3)], expected=3) == []
    assert replication_problems([topic("order-created", 1, None)], expected=1) == []


def test_a_topic_with_fewer_replicas_is_named_with_found_and_expected() -> None:
    problems = replication_problems([topic("order-created", 3), topic("reserve-product", 1)], 3)
    assert problems == [
        "reserve-product: 1 replica(s) per partition (partitions 0,1,2,3,4,5), expected 3"
    ]


def test_partitions_that_differ_are_listed() -> None:
    mixed = TopicReplication("order-updated", {0: 3, 1: 2, 2: 3}, 2)
    assert replication_problems([mixed], 3) == [
        "order-updated: 2/3 replica(s) per partition (partitions 1), expected 3"
    ]


def test_a_topic_the_cluster_does_not_know_is_reported() -> None:
    missing = TopicReplication("payment-processed", {}, None)
    assert replication_problems([missing], 3) == [
        "payment-processed: no partitions, expected 3 replicas each"
    ]


def test_min_insync_replicas_must_make_acks_all_mean_something() -> None:
    one = replication_problems([topic("order-created", 3, min_insync=1)], 3)
    assert one == [
        "order-created: min.insync.replicas=1, expected at least 2 "
        "(a write acknowledged by one broker is lost with it)"
    ]
    four = replication_problems([topic("order-created", 3, min_insync=4)], 3)
    assert "expected at most 3" in four[0]
    # A single broker has nothing to compare min.insync.replicas with.
    assert replication_problems([topic("order-created", 1, min_insync=1)], 1) == []


def test_the_error_names_the_setting_and_what_to_do() -> None:
    error = ReplicationMismatch(["reserve-product: 1 replica(s) per partition, expected 3"])
    text = str(error)
    assert "reserve-product: 1 replica(s)" in text
    assert "ORDERSAGA_KAFKA_REPLICATION_FACTOR" in text
    assert "Recreate these topics" in text


def test_the_cluster_answers_are_read() -> None:
    described = [
        {
            "error_code": 0,
            "topic": "t",
            "partitions": [
                {"partition": 0, "replicas": [1, 2, 3]},
                {"partition": 1, "replicas": [2]},
            ],
        },
        {"error_code": 3, "topic": "unknown", "partitions": []},
    ]
    assert from_metadata(described) == {"t": {0: 3, 1: 1}}
    response = SimpleNamespace(
        to_object=lambda: {
            "resources": [
                {
                    "resource_name": "t",
                    "config_entries": [
                        {"config_names": "min.insync.replicas", "config_value": "2"}
                    ],
                }
            ]
        }
    )
    assert min_insync_from_configs([response]) == {"t": 2}

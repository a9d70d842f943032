"""The replication check against the single Kafka node of `make infra-up` (one replica
per partition, whatever the broker's min.insync.replicas); the three-node cluster's
side is in tests/realstack/test_cluster.py."""

import pytest

from ordersaga.config import Settings
from ordersaga.messaging.kafka_config import client_options
from ordersaga.messaging.replication import ReplicationMismatch, check_replication
from tests.contract.conftest import KafkaTopics, unique


async def test_topics_of_one_replica_pass_for_one_and_are_refused_for_three(
    kafka_settings: Settings, kafka_topics: KafkaTopics
) -> None:
    topic = unique("replicated")
    await kafka_topics.create(topic)
    options = client_options(kafka_settings)
    await check_replication(options, [topic], expected=1)
    with pytest.raises(ReplicationMismatch) as refused:
        await check_replication(options, [topic], expected=3)
    assert f"{topic}: 1 replica(s) per partition" in str(refused.value)
    assert "expected 3" in str(refused.value)


async def test_a_topic_that_is_not_there_is_refused(kafka_settings: Settings) -> None:
    topic = unique("absent")
    with pytest.raises(ReplicationMismatch, match=f"{topic}: no partitions"):
        await check_replication(client_options(kafka_settings), [topic], expected=1)

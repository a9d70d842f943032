"""Whether the cluster gives the saga topics the replication the settings ask for.

``acks=all`` and the idempotent producer only protect an acknowledged message if the
topic keeps copies of it on several brokers, and ``min.insync.replicas`` decides on how
many a write must land before it is acknowledged. A topic created earlier with other
settings (or by a broker whose defaults differ) keeps its replication whatever the
services ask for now, so a replica checks it at start and refuses to run on a topic that
would quietly lose acknowledged messages with one broker.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from aiokafka.admin.config_resource import (  # type: ignore[import-untyped]
    ConfigResource,
    ConfigResourceType,
)

MIN_INSYNC = "min.insync.replicas"
SETTING = "ORDERSAGA_KAFKA_REPLICATION_FACTOR"


@dataclass(frozen=True, slots=True)
class TopicReplication:
    """What the cluster says of one topic: replicas of each partition, and the topic's
    ``min.insync.replicas`` (``None`` when it was not asked for)."""

    topic: str
    replicas: Mapping[int, int]
    min_insync: int | None = None


class ReplicationMismatch(Exception):
    """Saga topics whose replication is not what the settings ask for."""

    def __init__(self, problems: Sequence[str], unknown: Sequence[str] = ()) -> None:
        self.problems = list(problems)
        self.unknown = list(unknown)
        """The topics the cluster did not describe (yet: a topic just created may not have
        reached every broker's metadata)."""
        super().__init__(
            "the Kafka cluster does not give the saga topics the replication "
            f"{SETTING} asks for:\n  "
            + "\n  ".join(self.problems)
            + "\nRecreate these topics (they are created with the setting when absent) or "
            "change their replication and min.insync.replicas on the cluster; or set "
            f"{SETTING} to what the cluster gives."
        )


def replication_problems(found: Sequence[TopicReplication], expected: int) -> list[str]:
    """One line for each topic whose replication differs from ``expected``, naming the
    topic, what was found and what was expected. With ``expected`` over 1 the topic's
    ``min.insync.replicas`` must be at least 2 (else an acknowledged write may live on one
    broker only) and at most ``expected`` (else every write is refused)."""
    problems = []
    for topic in found:
        counts = sorted(set(topic.replicas.values()))
        if not counts:
            problems.append(f"{topic.topic}: no partitions, expected {expected} replicas each")
        elif counts != [expected]:
            wrong = sorted(p for p, n in topic.replicas.items() if n != expected)
            problems.append(
                f"{topic.topic}: {'/'.join(map(str, counts))} replica(s) per partition "
                f"(partitions {_ranges(wrong)}), expected {expected}"
            )
        if expected > 1 and topic.min_insync is not None:
            if topic.min_insync < 2:
                problems.append(
                    f"{topic.topic}: {MIN_INSYNC}={topic.min_insync}, expected at least 2 "
                    "(a write acknowledged by one broker is lost with it)"
                )
            elif topic.min_insync > expected:
                problems.append(
                    f"{topic.topic}: {MIN_INSYNC}={topic.min_insync}, expected at most "
                    f"{expected} (no write could be acknowledged)"
                )
    return problems


def _ranges(numbers: Sequence[int]) -> str:
    return ",".join(map(str, numbers))


def from_metadata(described: Sequence[Mapping[str, Any]]) -> dict[str, dict[int, int]]:
    """Replicas per partition of each topic, from ``describe_topics``' answer."""
    return {
        t["topic"]: {p["partition"]: len(p["replicas"]) for p in t["partitions"]}
        for t in described
        if t["error_code"] == 0
    }


def min_insync_from_configs(responses: Sequence[Any]) -> dict[str, int]:
    """Each topic's ``min.insync.replicas``, from ``describe_configs``' answers."""
    found = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            for entry in resource["config_entries"]:
                if entry["config_names"] == MIN_INSYNC:
                    found[resource["resource_name"]] = int(entry["config_value"])
    return found


async def describe_replication(
    options: Mapping[str, Any], topics: Sequence[str], *, with_min_insync: bool
) -> list[TopicReplication]:
    """Ask the cluster at ``options`` (aiokafka client options) how ``topics`` are
    replicated. A topic the cluster does not know is reported with no partitions."""
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        replicas = from_metadata(await admin.describe_topics(list(topics)))
        min_insync: dict[str, int] = {}
        if with_min_insync:
            resources = [
                ConfigResource(ConfigResourceType.TOPIC, t, {MIN_INSYNC: None}) for t in topics
            ]
            min_insync = min_insync_from_configs(await admin.describe_configs(resources))
    finally:
        await admin.close()
    return [TopicReplication(t, replicas.get(t, {}), min_insync.get(t)) for t in topics]


async def check_replication(
    options: Mapping[str, Any], topics: Sequence[str], expected: int
) -> None:
    """Raise :class:`ReplicationMismatch` unless every topic has ``expected`` replicas per
    partition (and, when ``expected`` is over 1, a ``min.insync.replicas`` that makes
    ``acks=all`` mean something)."""
    found = await describe_replication(options, topics, with_min_insync=expected > 1)
    problems = replication_problems(found, expected)
    if problems:
        raise ReplicationMismatch(problems, [t.topic for t in found if not t.replicas])

"""The chaos plan on a Kafka cluster: the databases restarted, the cluster's own faults
instead of a Kafka restart; and which node counts as the busiest leader."""

import random

import pytest

from ordersaga.services.registry import SERVICE_NAMES
from ordersaga.tools.chaos import CLUSTER_INFRA_PARTS, ChaosConfig, plan_faults
from ordersaga.tools.chaos_kafka import busiest


@pytest.mark.parametrize("seed", range(5))
def test_a_cluster_plan_kills_the_leader_and_hangs_a_node_once_each(seed: int) -> None:
    plan = plan_faults(random.Random(seed), duration=30, replicas=2, kafka="cluster")
    assert {f.target for f in plan if f.kind == "kill"} == set(SERVICE_NAMES)
    assert sorted(f.target for f in plan if f.kind == "restart") == ["mariadb", "postgres"]
    assert sorted(f.kind for f in plan if f.target == "kafka3") == ["broker-stop", "leader-kill"]
    hung = next(f for f in plan if f.kind == "broker-stop")
    assert 12 <= hung.pause <= 20  # past the consumers' and the brokers' session timeouts
    assert plan == plan_faults(random.Random(seed), duration=30, replicas=2, kafka="cluster")


def test_a_cluster_run_brings_the_cluster_back_before_judging() -> None:
    config = ChaosConfig(duration=10, orders_per_second=1, kafka="cluster")
    assert config.infra_parts == CLUSTER_INFRA_PARTS
    assert "kafka3" in config.infra_parts and "kafka" not in config.infra_parts


def test_the_busiest_leader_leads_the_most_partitions() -> None:
    assert busiest([1, 2, 2, 3, -1, -1, -1]) == 2
    with pytest.raises(RuntimeError, match="no partition"):
        busiest([-1, -1])

"""The shipped Prometheus configuration and alert rules, checked by promtool: the
configuration and the rules load, and every alert fires on series that call for it and
stays silent on those that do not (alerts_test.yml)."""

import subprocess
from typing import Any

import yaml

from tests.deploy.prometheus import ALERTS, PROMETHEUS_DIR, alert_queries, tool

ALERT_NAMES = {
    "OrdersagaSagasParked",
    "OrdersagaOutboxStuck",
    "OrdersagaConsumerLagGrowing",
    "OrdersagaDeadLetters",
    "OrdersagaSagasOverdue",
    "OrdersagaReplicaDown",
}


def promtool(*args: str) -> str:
    done = subprocess.run(
        [tool("promtool"), *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True
    )
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def load(name: str) -> Any:
    return yaml.safe_load((PROMETHEUS_DIR / name).read_text())


def test_the_configuration_loads_with_its_rules() -> None:
    out = promtool("check", "config", "prometheus.yml")
    assert f"SUCCESS: {len(ALERT_NAMES)} rules found" in out, out


def test_the_rules_load_and_each_says_what_it_means_and_what_to_do() -> None:
    out = promtool("check", "rules", ALERTS.name)
    assert f"SUCCESS: {len(ALERT_NAMES)} rules found" in out, out
    rules = [rule for group in load(ALERTS.name)["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} == ALERT_NAMES
    for rule in rules:
        assert rule["annotations"]["summary"], rule["alert"]
        assert len(rule["annotations"]["description"]) > 100, f"{rule['alert']}: what to do?"
        assert rule["labels"]["severity"] in ("page", "warn"), rule["alert"]


def test_each_alert_fires_and_stays_silent_as_its_unit_tests_say() -> None:
    out = promtool("test", "rules", "alerts_test.yml")
    assert "SUCCESS" in out, out


def test_every_alert_is_unit_tested_both_firing_and_silent() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for case in load("alerts_test.yml")["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else silent).add(check["alertname"])
    assert firing == set(alert_queries()) == ALERT_NAMES
    assert silent == ALERT_NAMES


def test_the_targets_are_the_metrics_ports_of_two_replicas_of_each_service() -> None:
    groups = load("targets/ordersaga.yml")
    ports = {(g["labels"]["service"], g["labels"]["replica"]): g["targets"] for g in groups}
    assert ports == {
        (service, str(replica)): [f"127.0.0.1:{9100 + 10 * k + replica}"]
        for k, service in enumerate(("order", "orchestrator", "stock", "payment"))
        for replica in (1, 2)
    }

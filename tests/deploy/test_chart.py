"""The Helm chart: it lints, renders valid Kubernetes objects with the default and a
production-like values file, wires every setting of config.py, and keeps the promises of
docs/deploy.md (probes, graceful stop, hooks, security)."""

import copy
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from ordersaga.config import Settings
from tests.deploy.chart import (
    CHART,
    KUBERNETES,
    PRODUCTION,
    SERVICES,
    Manifest,
    container,
    environment,
    of_kind,
    render,
    run_helm,
    template_text,
)

TRY_IT = ("secrets.values.order-db-url=mysql+aiomysql://u:p@db/orders",)


def secret_settings() -> set[str]:
    """Settings that hold a password: the database URLs and every SecretStr."""
    secret = set()
    for name, field in Settings.model_fields.items():
        types = {field.annotation, *typing.get_args(field.annotation)}
        if name.endswith(("_db_url", "_db_owner_url")) or SecretStr in types:
            secret.add(name)
    return secret


def variable(name: str) -> str:
    return f"ORDERSAGA_{name.upper()}"


@pytest.fixture(scope="module")
def default() -> list[Manifest]:
    return render(sets=TRY_IT)


@pytest.fixture(scope="module")
def production() -> list[Manifest]:
    return render(PRODUCTION)


def test_the_chart_lints_with_either_values_file() -> None:
    for extra in ([], ["-f", str(PRODUCTION)]):
        done = run_helm(
            "lint",
            "--strict",
            "--kube-version",
            f"{KUBERNETES}.0",
            str(CHART),
            *extra,
            "--set",
            TRY_IT[0],
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


def validate(docs: list[Manifest], path: Path) -> subprocess.CompletedProcess[str]:
    """kubernetes-validate --strict (unknown fields are errors) on ``docs``."""
    path.write_text(yaml.safe_dump_all(docs))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "kubernetes_validate",
            "--strict",
            "--kubernetes-version",
            KUBERNETES,
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("values", ["default", "production"])
def test_the_rendered_manifests_are_valid_kubernetes_objects(values: str, tmp_path: Path) -> None:
    text = template_text(sets=TRY_IT) if values == "default" else template_text(PRODUCTION)
    # The ServiceMonitor is the Prometheus Operator's kind, not Kubernetes': it is checked
    # on its own below; every other object against the schemas of the Kubernetes version.
    docs = [d for d in yaml.safe_load_all(text) if d and d["kind"] != "ServiceMonitor"]
    done = validate(docs, tmp_path / "manifests.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(f"against version {KUBERNETES}") == len(docs), done.stdout
    assert done.stdout.count(" passed for resource ") == len(docs), done.stdout


def test_the_validation_refuses_a_field_kubernetes_does_not_know(
    default: list[Manifest], tmp_path: Path
) -> None:
    deployment = copy.deepcopy(of_kind(default, "Deployment")["ordersaga-stock"])
    container(deployment)["healthcheck"] = {"test": ["CMD", "true"]}
    done = validate([deployment], tmp_path / "wrong.yaml")
    assert done.returncode != 0
    assert "healthcheck" in done.stdout + done.stderr


def test_every_setting_of_config_py_is_in_values_yaml() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    plain, keyed = set(values["settings"]), set(values["secrets"]["keys"])
    missing = set(Settings.model_fields) - plain - keyed
    assert not missing, f"settings missing from values.yaml (settings: or secrets.keys:): {missing}"
    assert not plain & secret_settings(), "passwords belong in secrets.keys, not settings"
    assert keyed == secret_settings()


def test_every_setting_reaches_every_replica_and_the_migrations(
    production: list[Manifest],
) -> None:
    deployments = of_kind(production, "Deployment")
    everything = {variable(name) for name in Settings.model_fields}
    logins = {variable(n) for n in Settings.model_fields if n.split("_db_")[0] in SERVICES}
    logins |= {variable(f"{s}_kafka_sasl_password") for s in SERVICES}
    owners = {v for v in logins if "_OWNER_" in v}
    runtime_passwords = {
        variable(f"{s}_{p}_password") for s in SERVICES for p in ("db", "kafka_sasl")
    }
    for service in SERVICES:
        env = environment(production, deployments[f"ordersaga-{service}"])
        # Each replica gets its own database's login and Kafka password only, never the
        # owner's nor another service's.
        own = {variable(f"{service}_{p}") for p in ("db_url", "db_password", "kafka_sasl_password")}
        expected = everything - logins | own
        assert expected <= set(env), f"{service} lacks {expected - set(env)}"
        assert not (logins - own) & set(env)
    job = of_kind(production, "Job")["ordersaga-migrations"]
    migrations = set(environment(production, job))
    assert everything - {variable("kafka_sasl_password")} - runtime_passwords <= migrations
    assert owners <= migrations and not runtime_passwords & migrations


def test_passwords_come_from_the_named_secrets(production: list[Manifest]) -> None:
    deployments = of_kind(production, "Deployment")
    stock = environment(production, deployments["ordersaga-stock"])
    assert stock[variable("stock_db_url")] == {
        "secretKeyRef": {"name": "ordersaga", "key": "stock-db-url"}
    }
    assert stock[variable("kafka_sasl_password")] == {
        "secretKeyRef": {"name": "ordersaga", "key": "kafka-sasl-password"}
    }
    assert stock[variable("stock_kafka_sasl_password")] == {
        "secretKeyRef": {"name": "ordersaga", "key": "stock-kafka-sasl-password"}
    }
    assert variable("payment_kafka_sasl_password") not in stock
    job = environment(production, of_kind(production, "Job")["ordersaga-migrations"])
    assert job[variable("order_db_url")] == {
        "secretKeyRef": {"name": "ordersaga-migrations", "key": "order-db-url"}
    }
    assert not of_kind(production, "Secret"), "with existingSecret the chart makes none"


def test_values_are_rendered_as_the_settings_read_them(production: list[Manifest]) -> None:
    settings = of_kind(production, "ConfigMap")["ordersaga-settings"]["data"]
    parsed = Settings.model_validate(
        {
            k.removeprefix("ORDERSAGA_").lower(): v
            for k, v in settings.items()
            if k.startswith("ORDERSAGA_")
        }
    )
    assert parsed.partitions == 12
    assert parsed.timer_interval == 1.0
    assert parsed.kafka_security_protocol == "SASL_SSL"
    assert settings["ORDERSAGA_INBOX_RETENTION"] == "1209600"
    assert settings["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4317"
    deployments = of_kind(production, "Deployment")
    orchestrator = environment(production, deployments["ordersaga-orchestrator"])
    assert orchestrator[variable("timer_interval")] == "0.5"


def test_a_setting_left_null_is_not_set(default: list[Manifest]) -> None:
    settings = of_kind(default, "ConfigMap")["ordersaga-settings"]["data"]
    assert variable("kafka_sasl_mechanism") not in settings
    assert settings[variable("api_host")] == "0.0.0.0"


def test_probes_ask_healthz_and_readyz_on_a_port_each_service_serves(
    default: list[Manifest],
) -> None:
    for service, port in {
        "order": 8091,
        "orchestrator": 9100,
        "stock": 9100,
        "payment": 9100,
    }.items():
        spec = container(of_kind(default, "Deployment")[f"ordersaga-{service}"])
        ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
        for probe, path in (
            ("livenessProbe", "/healthz"),
            ("startupProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
        ):
            get = spec[probe]["httpGet"]
            assert (get["path"], ports[get["port"]]) == (path, port), (service, probe)


def test_a_replica_has_time_to_stop_cleanly(default: list[Manifest]) -> None:
    grace = Settings().shutdown_grace
    for deployment in of_kind(default, "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        pre_stop = int(container(deployment)["lifecycle"]["preStop"]["exec"]["command"][1])
        assert pod["terminationGracePeriodSeconds"] >= pre_stop + grace + 1
        assert pod["terminationGracePeriodSeconds"] == 30


def test_pods_run_unprivileged_on_a_read_only_root(default: list[Manifest]) -> None:
    workloads = [*of_kind(default, "Deployment").values(), *of_kind(default, "Job").values()]
    assert len(workloads) == 5
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        security = container(workload)["securityContext"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        assert {"name": "tmp", "mountPath": "/tmp"} in container(workload)["volumeMounts"]


def test_migrations_run_as_a_hook_before_install_and_upgrade(default: list[Manifest]) -> None:
    job = of_kind(default, "Job")["ordersaga-migrations"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert container(job)["args"] == ["db", "upgrade"]
    secret = of_kind(default, "Secret")["ordersaga-secrets"]
    # The Secret the chart makes for a try is a hook too, made before the Job.
    assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )


def test_each_service_has_replicas_a_budget_and_in_production_an_autoscaler(
    default: list[Manifest], production: list[Manifest]
) -> None:
    for service in SERVICES:
        name = f"ordersaga-{service}"
        assert of_kind(default, "Deployment")[name]["spec"]["replicas"] == 2
        assert of_kind(default, "PodDisruptionBudget")[name]["spec"]["maxUnavailable"] == 1
        assert "replicas" not in of_kind(production, "Deployment")[name]["spec"]
        hpa = of_kind(production, "HorizontalPodAutoscaler")[name]["spec"]
        assert hpa["maxReplicas"] == 12
        kinds = [m["type"] for m in hpa["metrics"]]
        assert kinds == (["Resource"] if service == "order" else ["Resource", "External"])
    lag = of_kind(production, "HorizontalPodAutoscaler")["ordersaga-stock"]["spec"]["metrics"][1]
    assert lag["external"]["metric"]["selector"]["matchLabels"] == {
        "consumergroup": "stock-service"
    }
    assert not of_kind(default, "HorizontalPodAutoscaler")


def test_services_reach_the_api_the_console_and_every_metrics_port(
    production: list[Manifest],
) -> None:
    services = of_kind(production, "Service")
    assert services["ordersaga-api"]["spec"]["ports"][0]["targetPort"] == "api"
    assert services["ordersaga-admin"]["spec"]["ports"][0]["targetPort"] == "admin"
    assert services["ordersaga-admin"]["spec"]["selector"]["app.kubernetes.io/component"] == (
        "orchestrator"
    )
    monitor = of_kind(production, "ServiceMonitor")["ordersaga"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    scraped = [
        n for n, s in services.items() if selector.items() <= s["metadata"]["labels"].items()
    ]
    assert sorted(scraped) == sorted(f"ordersaga-{s}-metrics" for s in SERVICES)
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_network_policies_let_in_only_what_each_service_serves(
    default: list[Manifest],
) -> None:
    policies = of_kind(default, "NetworkPolicy")
    assert sorted(policies) == sorted(f"ordersaga-{s}" for s in SERVICES)
    ports = {
        name.removeprefix("ordersaga-"): {
            p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]
        }
        for name, policy in policies.items()
    }
    assert ports == {
        "order": {"api", "metrics"},
        "orchestrator": {"admin", "metrics"},
        "stock": {"metrics"},
        "payment": {"metrics"},
    }


def test_more_autoscaled_replicas_than_partitions_is_refused() -> None:
    done = run_helm(
        "template",
        "ordersaga",
        str(CHART),
        "--kube-version",
        f"{KUBERNETES}.0",
        "-f",
        str(PRODUCTION),
        "--set",
        "settings.partitions=6",
    )
    assert done.returncode != 0
    assert "autoscaling.maxReplicas (12) is more than settings.partitions (6)" in done.stderr


def test_without_a_secret_the_chart_says_what_to_give() -> None:
    done = run_helm("template", "ordersaga", str(CHART), "--kube-version", f"{KUBERNETES}.0")
    assert done.returncode != 0
    assert "secrets.existingSecret names the Secret with the database URLs" in done.stderr


def test_a_service_can_stay_on_its_release_while_the_others_move() -> None:
    manifests = render(sets=(*TRY_IT, "image.tag=0.2.0", "services.stock.imageTag=0.1.0"))
    images = {
        name.removeprefix("ordersaga-"): container(d)["image"]
        for name, d in of_kind(manifests, "Deployment").items()
    }
    assert images == {
        "order": "ordersaga:0.2.0",
        "orchestrator": "ordersaga:0.2.0",
        "stock": "ordersaga:0.1.0",
        "payment": "ordersaga:0.2.0",
    }
    assert container(of_kind(manifests, "Job")["ordersaga-migrations"])["image"] == (
        "ordersaga:0.2.0"
    )

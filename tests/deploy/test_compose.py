"""deploy/compose/compose.yaml, as `podman-compose config` reads it: the services, the
order they start in, and the settings, secrets and health of each ordersaga service."""

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"
SERVICES = ("order", "orchestrator", "stock", "payment")


def podman_compose() -> list[str]:
    """podman-compose from the test extras (next to this Python), as a command."""
    found = Path(sys.executable).with_name("podman-compose")
    return [str(found)] if found.exists() else [shutil.which("podman-compose") or "podman-compose"]


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    if shutil.which("podman") is None:
        pytest.fail(
            "podman-compose reads the Compose file through podman, which is not installed: "
            "`bash infra/test-tools.sh` installs it (apt-get install podman; `make test` "
            "does it)",
            pytrace=False,
        )
    done = subprocess.run(
        [*podman_compose(), "--profile", "sample-data", "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    loaded: dict[str, Any] = yaml.safe_load(done.stdout)
    return loaded


def test_it_runs_the_servers_the_migrations_the_services_and_prometheus(
    config: dict[str, Any],
) -> None:
    assert set(config["services"]) == {
        "kafka",
        "postgres",
        "mariadb",
        "migrations",
        "seed",
        "prometheus",
        *SERVICES,
    }
    assert config["services"]["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == (
        "broker,controller"
    )
    assert config["services"]["migrations"]["command"] == ["db", "upgrade"]
    volumes = config["services"]["prometheus"]["volumes"]
    mounted = {
        (COMPOSE.parent / source).resolve(): target
        for source, target, *_ in (volume.split(":") for volume in volumes)
    }
    assert mounted[ROOT / "deploy" / "prometheus" / "prometheus.yml"] == (
        "/etc/prometheus/prometheus.yml"
    )


def test_each_service_gets_its_settings_its_secret_and_a_healthcheck(
    config: dict[str, Any],
) -> None:
    for service in SERVICES:
        spec = config["services"][service]
        assert spec["command"] == ["serve", service]
        env = spec["environment"]
        assert env["ORDERSAGA_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["ORDERSAGA_METRICS_PORT"] == "9100"
        assert env["ORDERSAGA_SHUTDOWN_GRACE"] == "20"
        # Its own database's URL only, as a secret file named like the setting.
        assert spec["secrets"] == [f"ORDERSAGA_{service.upper()}_DB_URL"]
        assert spec["deploy"]["replicas"] == 2
        assert "/readyz" in " ".join(spec["healthcheck"]["test"])
        assert spec["read_only"] is True
        assert spec["user"] == "10001:10001"
    assert config["services"]["order"]["environment"]["ORDERSAGA_API_HOST"] == "0.0.0.0"
    assert config["services"]["orchestrator"]["environment"]["ORDERSAGA_ADMIN_HOST"] == "0.0.0.0"


def test_services_start_after_the_migrations_which_start_after_the_databases(
    config: dict[str, Any],
) -> None:
    for service in SERVICES:
        assert config["services"][service]["depends_on"] == {
            "kafka": {"condition": "service_healthy"},
            "migrations": {"condition": "service_completed_successfully"},
        }
    assert config["services"]["migrations"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "mariadb": {"condition": "service_healthy"},
    }
    for server in ("kafka", "postgres", "mariadb"):
        assert config["services"][server]["healthcheck"]["test"]


def test_secrets_are_files_and_every_database_url_is_one(config: dict[str, Any]) -> None:
    secrets = config["secrets"]
    for service in SERVICES:
        path = COMPOSE.parent / secrets[f"ORDERSAGA_{service.upper()}_DB_URL"]["file"]
        assert path.is_file(), path
    assert sorted(config["services"]["migrations"]["secrets"]) == sorted(
        f"ORDERSAGA_{s.upper()}_DB_URL" for s in SERVICES
    )
    assert config["services"]["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == (
        "/run/secrets/postgres_password"
    )

"""The Helm chart rendered with the helm that infra/helm.sh builds (once, into .cache/)."""

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "ordersaga"
PRODUCTION = CHART / "values-production.yaml"
SERVICES = ("order", "orchestrator", "stock", "payment")
KUBERNETES = "1.37"
"""The Kubernetes version the chart is rendered for and its manifests validated against
(kubernetes-validate's schemas)."""

Manifest = dict[str, Any]


@cache
def helm() -> str:
    """The helm binary, built by infra/helm.sh when it is missing."""
    done = subprocess.run(
        ["bash", str(ROOT / "infra" / "helm.sh"), "--path"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"infra/helm.sh could not build helm:\n{done.stderr}"
    return done.stdout.strip()


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), *args], capture_output=True, text=True, check=False)


def template_text(*values: Path, sets: tuple[str, ...] = ()) -> str:
    """``helm template`` of the chart as release ``ordersaga``: the manifests as YAML."""
    args = ["template", "ordersaga", str(CHART), "--namespace", "shop"]
    args += ["--kube-version", f"{KUBERNETES}.0"]
    for path in values:
        args += ["-f", str(path)]
    for assignment in sets:
        args += ["--set", assignment]
    done = run_helm(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def render(*values: Path, sets: tuple[str, ...] = ()) -> list[Manifest]:
    """The rendered manifests, hooks included."""
    docs = yaml.safe_load_all(template_text(*values, sets=sets))
    return [doc for doc in docs if doc]


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    """The manifests of ``kind`` by name."""
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def container(manifest: Manifest) -> Manifest:
    containers: list[Manifest] = manifest["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def environment(manifests: list[Manifest], workload: Manifest) -> dict[str, Any]:
    """The variables a workload's container gets: its ConfigMaps' data (envFrom), then its
    own env entries (a literal value, or the secretKeyRef / fieldRef it comes from)."""
    configmaps = of_kind(manifests, "ConfigMap")
    env: dict[str, Any] = {}
    spec = container(workload)
    for source in spec.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]]["data"])
    for entry in spec.get("env", []):
        env[entry["name"]] = entry.get("value", entry.get("valueFrom"))
    return env

"""A replica refuses OTEL_* variables it cannot follow, saying what to change."""

import os
import subprocess
from pathlib import Path

import pytest

from ordersaga.runtime.processes import CLI


@pytest.mark.parametrize(
    ("command", "environ", "said"),
    [
        (
            ["serve", "stock"],
            {"OTEL_TRACES_EXPORTER": "jaeger"},
            "unknown exporter 'jaeger'; use one or more of otlp, console, none",
        ),
        (
            ["up", "--embedded"],
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTLP protocol 'grpc' is not supported; use http/protobuf",
        ),
    ],
)
def test_unusable_tracing_variables_are_refused(
    command: list[str], environ: dict[str, str], said: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [*CLI, *command],
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(tmp_path),
    )
    assert done.returncode == 2
    assert said in done.stderr
    assert "Traceback" not in done.stderr

"""The running engine's own word, against real processes: the Ollama stand-in's /api/status
and CORS answers (as Ollama's), and llama-cpp-python's server, which allows every origin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.embedded.llamacpp import RunningEngine
from tests.integration.bench_standin import standin
from tests.integration.test_audit_runners import _pid_listening

pytestmark = pytest.mark.integration


def _controls(*args: str, out: Path) -> dict[str, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "auditor", "audit", *args, "--output", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    return {c["id"]: c for c in json.loads(out.read_text())["controls"]}


def _standin_controls(tmp_path: Path, env: dict[str, str]) -> dict[str, dict[str, object]]:
    with standin(tmp_path, env) as url:
        pid = _pid_listening(url)
        return _controls("--engine", "ollama", "--engine-pid", str(pid), out=tmp_path / "a.json")


@pytest.mark.parametrize(
    ("env", "status"),
    [
        ({"OFFGRID_STANDIN_VERSION": "0.33.0", "OLLAMA_NO_CLOUD": "1"}, "pass"),
        ({"OFFGRID_STANDIN_VERSION": "0.33.0"}, "fail"),
        ({"OFFGRID_STANDIN_VERSION": "0.12.3", "OLLAMA_NO_CLOUD": "1"}, "error"),
    ],
)
def test_cloud_status_from_the_running_server(
    tmp_path: Path, env: dict[str, str], status: str
) -> None:
    controls = _standin_controls(tmp_path, env)
    assert controls["OG-CFG-07"]["status"] == status, controls["OG-CFG-07"]


def test_cors_probe_of_the_standin(tmp_path: Path) -> None:
    env = {"OFFGRID_STANDIN_VERSION": "0.33.0", "OLLAMA_NO_CLOUD": "1"}
    assert _standin_controls(tmp_path / "a", env)["OG-CFG-06"]["status"] == "pass"
    wide = _standin_controls(tmp_path / "b", {**env, "OLLAMA_ORIGINS": "*"})
    assert wide["OG-CFG-06"]["status"] == "fail"
    assert "Access-Control-Allow-Origin" in json.dumps(wide["OG-CFG-06"])


def test_llamacpp_server_allows_every_origin(llama_engine: RunningEngine, tmp_path: Path) -> None:
    controls = _controls("--engine-pid", str(llama_engine.pid), out=tmp_path / "a.json")
    cors = controls["OG-CFG-06"]
    assert cors["status"] == "fail", cors
    assert "offgrid-cors-probe.invalid" in json.dumps(cors)
    assert controls["OG-CFG-07"]["status"] == "not_applicable"

"""The offgrid_hardening role in check mode with diffs: the drop-in it would write for each
engine, on a CPU host and on a GPU host, and its refusal (by argument validation) of an engine
it does not know. Check mode writes nothing; the sandbox's exposure score is measured on the
booted workstation."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from tests.unit.local_play import fatal_results, recap_failed, run_role

pytestmark = pytest.mark.root  # the drop-in belongs to root, as on a workstation


def _host(engine: str, **variables: object) -> dict[str, object]:
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "offgrid_engine": engine,
        **variables,
    }


@pytest.fixture(scope="module")
def role_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("hardening-role")
    hosts = {
        "ollama-cpu": _host("ollama", offgrid_hardening_gpu=False),
        "llamacpp-gpu": _host("llamacpp", offgrid_hardening_gpu=True),
        "unknown-engine": _host("vllm"),
    }
    output = run_role(
        tmp, "offgrid_hardening", {"all": {"hosts": hosts}}, "all", {"ANSIBLE_FORKS": "3"},
        check=True, diff=True,
    )  # fmt: skip
    return {"output": output, "failed": recap_failed(output), "fatal": fatal_results(output)}


def _drop_in(output: str, host: str) -> str:
    """The would-be content of hardening.conf in host's diff (added lines, without the +)."""
    section = output.split(
        "TASK [offgrid_hardening : Sandbox the engine unit in hardening.conf", 1
    )[1]
    section = section.split("\nTASK [", 1)[0]
    block = section.split(f"changed: [{host}]", 1)[0].rsplit("+++ after", 1)[1]
    return "\n".join(line[1:] for line in block.splitlines() if line.startswith("+"))


def test_cpu_host_gets_private_devices_and_the_ollama_paths(role_run: dict[str, Any]) -> None:
    assert role_run["failed"]["ollama-cpu"] == 0
    conf = _drop_in(role_run["output"], "ollama-cpu")
    assert "PrivateDevices=yes" in conf and "MemoryDenyWriteExecute=yes" in conf
    assert "ReadWritePaths=/usr/share/ollama/.ollama/models /usr/share/ollama" in conf
    assert "DeviceAllow" not in conf


def test_gpu_host_gets_only_the_nvidia_devices(role_run: dict[str, Any]) -> None:
    assert role_run["failed"]["llamacpp-gpu"] == 0
    conf = _drop_in(role_run["output"], "llamacpp-gpu")
    assert "DeviceAllow=/dev/nvidia0 rw" in conf and "DeviceAllow=/dev/nvidia-uvm rw" in conf
    assert "PrivateDevices=no" in conf and "DevicePolicy=closed" in conf
    assert "ReadWritePaths" not in conf  # llama.cpp writes nowhere


def test_unknown_engine_is_refused(role_run: dict[str, Any]) -> None:
    assert role_run["failed"]["unknown-engine"] == 1
    (result,) = role_run["fatal"]["unknown-engine"]
    assert "offgrid_hardening_engine must be one of: ollama, llamacpp, got: vllm" in str(
        result["msg"]
    )

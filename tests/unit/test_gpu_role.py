"""The offgrid_gpu role, run for real by ansible-playbook over a local connection.

Four hosts in one run, each seeing different RECORDED evidence (data/gpu/) through a stand-in
nvidia-smi and lspci: a GPU workstation with a new driver, one with an old driver, one whose
card has no driver loaded, and a CPU-only workstation. The role's own verdicts and fact files
are checked, so the Jinja wiring between the probes, the filter and the asserts is covered.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.standins import nvidia_smi_standin
from tests.unit.local_play import fatal_results, recap_failed, run_role

DATA = Path(__file__).with_name("data") / "gpu"

pytestmark = pytest.mark.root  # the fact file is owned by root, as on a workstation


def _lspci_standin(path: Path, fixture: str) -> str:
    path.write_text(
        "#!/bin/sh\n# offgrid TEST STAND-IN for lspci: replays a recorded listing.\n"
        f"cat {DATA / fixture}\n",
        encoding="utf-8",
    )
    path.chmod(0o755)
    return str(path)


def _host(
    tmp: Path, name: str, proc: str | None, smi: str | None, lspci: str | None
) -> dict[str, Any]:
    missing = str(tmp / "not-installed")
    smi_path = missing
    if smi is not None:
        smi_path = str(
            nvidia_smi_standin.install(tmp / f"{name}-nvidia-smi", (DATA / smi).read_text())
        )
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "offgrid_gpu_proc_version_path": str(DATA / proc) if proc else missing,
        "offgrid_gpu_nvidia_smi": smi_path,
        "offgrid_gpu_lspci": _lspci_standin(tmp / f"{name}-lspci", lspci) if lspci else missing,
        "offgrid_gpu_facts_dir": str(tmp / name / "facts.d"),
    }


@pytest.fixture(scope="module")
def role_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("gpu-role")
    gpu_hosts = {
        "gpu-new-driver": _host(
            tmp,
            "gpu-new-driver",
            "proc-version-open-565.57.01.txt",
            "nvidia-smi-rtx4090.csv",
            "lspci-nn-rtx3080.txt",
        ),
        "gpu-old-driver": _host(
            tmp, "gpu-old-driver", "proc-version-proprietary-384.98.txt", None, None
        ),
        "gpu-no-driver": _host(
            tmp, "gpu-no-driver", None, "nvidia-smi-no-driver.txt", "lspci-nn-rtx2080ti.txt"
        ),
    }
    cpu_hosts = {"cpu-only": _host(tmp, "cpu-only", None, None, "lspci-nn-intel-only.txt")}
    inventory = {
        "workstations": {
            "children": {
                "gpu_workstations": {"hosts": gpu_hosts},
                "cpu_workstations": {"hosts": cpu_hosts},
            }
        }
    }
    output = run_role(
        tmp, "offgrid_gpu", inventory, "workstations",
        {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"},
    )  # fmt: skip
    return tmp, _parse(output)


def _parse(output: str) -> dict[str, Any]:
    """Failures per host (their results) and the recap's failed counts."""
    return {"failures": fatal_results(output), "failed": recap_failed(output)}


def _failure_messages(run: dict[str, Any], host: str) -> list[str]:
    return [str(result.get("msg", "")) for result in run["failures"].get(host, [])]


def _fact_file(tmp: Path, host: str) -> dict[str, Any]:
    path = tmp / host / "facts.d" / "offgrid_gpu.fact"
    data: dict[str, Any] = json.loads(path.read_text())
    assert path.stat().st_mode & 0o777 == 0o644
    return data


def test_gpu_workstation_with_a_new_driver_passes_and_records_facts(
    role_run: tuple[Path, dict[str, Any]],
) -> None:
    tmp, run = role_run
    assert run["failed"]["gpu-new-driver"] == 0
    facts = _fact_file(tmp, "gpu-new-driver")
    assert facts["driver_version"] == "565.57.01"
    assert facts["gpus"][0]["name"] == "NVIDIA GeForce RTX 4090"
    assert facts["required"] is True
    assert facts["min_driver_version"] == "531"


def test_gpu_workstation_with_an_old_driver_is_refused(
    role_run: tuple[Path, dict[str, Any]],
) -> None:
    tmp, run = role_run
    assert run["failed"]["gpu-old-driver"] == 1
    (message,) = _failure_messages(run, "gpu-old-driver")
    assert "384.98" in message and "older than" in message
    assert not (tmp / "gpu-old-driver" / "facts.d").exists()


def test_gpu_workstation_without_a_loaded_driver_is_refused(
    role_run: tuple[Path, dict[str, Any]],
) -> None:
    _, run = role_run
    assert run["failed"]["gpu-no-driver"] == 1
    (message,) = _failure_messages(run, "gpu-no-driver")
    assert "no NVIDIA driver is loaded" in message
    assert "TU102 [GeForce RTX 2080 Ti Rev. A]" in message


def test_cpu_only_workstation_passes_through(role_run: tuple[Path, dict[str, Any]]) -> None:
    tmp, run = role_run
    assert run["failed"]["cpu-only"] == 0
    facts = _fact_file(tmp, "cpu-only")
    assert (facts["nvidia_hardware"], facts["required"], facts["gpu_count"]) == (False, False, 0)

"""The offgrid_gpu role on a booted offline workstation: the CPU-only path as it is, and the
GPU path with a STAND-IN nvidia-smi (tests/standins/nvidia_smi_standin.py) on PATH that replays
outputs recorded on real NVIDIA machines (tests/unit/data/gpu/).

The machine is in the harness inventory's `cpu_workstations`; the GPU cases make that group
the one that must have a driver (offgrid_gpu_group), so the role's group logic is what decides.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.host.workstation import PlaybookRun, Workstation, booted
from tests.standins import nvidia_smi_standin

pytestmark = [pytest.mark.host, pytest.mark.root]

DATA = Path(__file__).resolve().parents[1] / "unit" / "data" / "gpu"
FACT_FILE = "/etc/ansible/facts.d/offgrid_gpu.fact"
STANDIN_PATH = "/usr/local/bin/nvidia-smi"
GPU_GROUP = {"offgrid_gpu_group": "cpu_workstations"}


@pytest.fixture(scope="module")
def machine() -> Iterator[Workstation]:
    with booted(f"ogg-{os.getpid()}") as ws:
        yield ws


@pytest.fixture(scope="module")
def gpu_playbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gpu-play") / "gpu.yml"
    path.write_text(
        "- name: GPU role on the test workstation\n  hosts: workstations\n"
        "  gather_facts: false\n  roles:\n    - offgrid_gpu\n"
        "- name: Read the local fact back as a later play would\n  hosts: workstations\n"
        "  gather_facts: true\n  gather_subset: [local]\n  tasks:\n"
        "    - name: Show the recorded GPU facts\n      ansible.builtin.debug:\n"
        '        msg: "LOCAL-FACT {{ ansible_local.offgrid_gpu | to_json | b64encode }}"\n'
    )
    return path


def _standin(machine: Workstation, tmp_path: Path, recorded: str, exit_code: int = 0) -> None:
    local = nvidia_smi_standin.install(
        tmp_path / "nvidia-smi", (DATA / recorded).read_text(), exit_code
    )
    machine.copy_to(local, STANDIN_PATH)
    machine.run(f"chmod 0755 {STANDIN_PATH}")


def _facts(machine: Workstation) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(machine.run(f"cat {FACT_FILE}").stdout)
    return data


def _local_fact(run: PlaybookRun) -> dict[str, Any]:
    line = next(line for line in run.output.splitlines() if "LOCAL-FACT " in line)
    encoded = line.split("LOCAL-FACT ", 1)[1].rstrip('"')
    data: dict[str, Any] = json.loads(base64.b64decode(encoded))
    return data


def test_cpu_only_workstation_passes_through(machine: Workstation, gpu_playbook: Path) -> None:
    machine.run(f"rm -f {STANDIN_PATH} {FACT_FILE}")
    run = machine.playbook(gpu_playbook)
    facts = _facts(machine)
    assert (facts["nvidia_hardware"], facts["required"], facts["driver_version"]) == (
        False,
        False,
        None,
    )
    assert _local_fact(run) == facts


def test_gpu_workstation_with_a_new_driver(
    machine: Workstation, gpu_playbook: Path, tmp_path: Path
) -> None:
    _standin(machine, tmp_path, "nvidia-smi-rtx4090.csv")
    run = machine.playbook(gpu_playbook, extra_vars=GPU_GROUP)
    facts = _facts(machine)
    assert facts["required"] is True
    assert (facts["driver_version"], facts["driver_source"]) == ("580.95.05", "nvidia-smi")
    assert facts["gpus"] == [
        {
            "name": "NVIDIA GeForce RTX 4090",
            "driver_version": "580.95.05",
            "memory_total_mib": 24564,
        }
    ]
    assert _local_fact(run)["gpu_count"] == 1
    again = machine.playbook(gpu_playbook, extra_vars=GPU_GROUP)
    assert again.stats[machine.name].changed == 0


def test_gpu_workstation_with_a_driver_below_the_floor_fails(
    machine: Workstation, gpu_playbook: Path, tmp_path: Path
) -> None:
    _standin(machine, tmp_path, "nvidia-smi-rtx4090.csv")
    run = machine.playbook(
        gpu_playbook,
        extra_vars={**GPU_GROUP, "offgrid_gpu_min_driver_version": "590"},
        expect_failure=True,
    )
    assert "NVIDIA driver 580.95.05" in run.output and "older than" in run.output


def test_gpu_workstation_without_a_driver_fails(
    machine: Workstation, gpu_playbook: Path, tmp_path: Path
) -> None:
    # nvidia-smi installed but the kernel module not loaded: its recorded message, exit 9.
    _standin(machine, tmp_path, "nvidia-smi-no-driver.txt", exit_code=9)
    run = machine.playbook(gpu_playbook, extra_vars=GPU_GROUP, expect_failure=True)
    assert "no NVIDIA driver is loaded" in run.output

"""The GPU role's parsing, fed with recorded outputs of real NVIDIA machines (data/gpu/)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).with_name("data") / "gpu"
PLUGIN = REPO / "roles" / "offgrid_gpu" / "filter_plugins" / "offgrid_gpu.py"


def _load_plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("offgrid_gpu_filter", PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu = _load_plugin()


def recorded(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("fixture", "version"),
    [
        ("proc-version-proprietary-384.98.txt", "384.98"),
        ("proc-version-open-565.57.01.txt", "565.57.01"),
        ("proc-version-jetson-35.3.1.txt", "35.3.1"),
    ],
)
def test_driver_version_from_every_kernel_module_flavour(fixture: str, version: str) -> None:
    assert gpu.driver_version_from_proc(recorded(fixture)) == version


@pytest.mark.parametrize(
    "text", [None, "", "GCC version:  gcc version 12.2.0\n", "NVRM version: x"]
)
def test_no_driver_version_without_an_nvrm_line(text: str | None) -> None:
    assert gpu.driver_version_from_proc(text) is None


def test_nvidia_smi_single_gpu() -> None:
    assert gpu.gpus_from_nvidia_smi(recorded("nvidia-smi-rtx4090.csv")) == [
        {
            "name": "NVIDIA GeForce RTX 4090",
            "driver_version": "580.95.05",
            "memory_total_mib": 24564,
        }
    ]


def test_nvidia_smi_four_gpus() -> None:
    gpus = gpu.gpus_from_nvidia_smi(recorded("nvidia-smi-4x-a100.csv"))
    assert [g["name"] for g in gpus] == ["NVIDIA A100-SXM4-80GB"] * 4
    assert {g["memory_total_mib"] for g in gpus} == {81920}


@pytest.mark.parametrize(
    "fixture",
    ["nvidia-smi-no-devices.txt", "nvidia-smi-nvml-mismatch.txt", "nvidia-smi-no-driver.txt"],
)
def test_nvidia_smi_error_messages_are_not_gpus(fixture: str) -> None:
    assert gpu.gpus_from_nvidia_smi(recorded(fixture)) == []


def test_gpu_name_with_a_comma_and_unknown_memory() -> None:
    gpus = gpu.gpus_from_nvidia_smi("NVIDIA RTX 6000, Ada Generation, 550.54.15, [N/A]\n")
    assert gpus == [
        {
            "name": "NVIDIA RTX 6000, Ada Generation",
            "driver_version": "550.54.15",
            "memory_total_mib": None,
        }
    ]


def test_lspci_counts_display_controllers_only() -> None:
    devices = gpu.nvidia_pci_devices(recorded("lspci-nn-rtx2080ti.txt"))
    # The card's audio, USB and UCSI functions share the vendor id but are not GPUs.
    assert devices == [
        {
            "slot": "01:00.0",
            "pci_class": "0300",
            "device_id": "1e07",
            "description": "NVIDIA Corporation TU102 [GeForce RTX 2080 Ti Rev. A]",
        }
    ]


def test_lspci_other_vendors_are_ignored() -> None:
    assert gpu.nvidia_pci_devices(recorded("lspci-nn-intel-only.txt")) == []
    assert gpu.nvidia_pci_devices(recorded("lspci-nn-rtx3080.txt"))[0]["device_id"] == "2206"


def test_kernel_file_is_the_authority_on_the_driver_version() -> None:
    facts: dict[str, Any] = gpu.offgrid_gpu_facts(
        recorded("proc-version-open-565.57.01.txt"),
        recorded("nvidia-smi-rtx4090.csv"),
        recorded("lspci-nn-rtx3080.txt"),
    )
    assert facts["driver_version"] == "565.57.01"
    assert facts["driver_source"] == "proc"
    assert facts["driver_loaded"] is True
    assert facts["gpu_count"] == 1
    assert facts["memory_total_mib"] == 24564


def test_nvidia_smi_supplies_the_version_when_proc_is_unreadable() -> None:
    facts = gpu.offgrid_gpu_facts("", recorded("nvidia-smi-4x-a100.csv"), "")
    assert (facts["driver_version"], facts["driver_source"]) == ("580.159.04", "nvidia-smi")
    assert facts["driver_loaded"] is False
    assert (facts["gpu_count"], facts["memory_total_mib"]) == (4, 4 * 81920)


def test_hardware_without_a_driver() -> None:
    facts = gpu.offgrid_gpu_facts(
        "", recorded("nvidia-smi-no-driver.txt"), recorded("lspci-nn-rtx2080ti.txt")
    )
    assert facts["nvidia_hardware"] is True
    assert facts["driver_version"] is None
    assert facts["gpu_count"] == 1


def test_cpu_only_host() -> None:
    facts = gpu.offgrid_gpu_facts("", "", recorded("lspci-nn-intel-only.txt"))
    assert facts == {
        "nvidia_hardware": False,
        "driver_loaded": False,
        "driver_version": None,
        "driver_source": None,
        "gpu_count": 0,
        "gpus": [],
        "pci_devices": [],
        "memory_total_mib": 0,
    }


def test_filter_is_registered_under_its_documented_name() -> None:
    assert gpu.FilterModule().filters()["offgrid_gpu_parse"] is gpu.offgrid_gpu_facts

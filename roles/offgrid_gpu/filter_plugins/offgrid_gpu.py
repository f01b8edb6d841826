"""Turn offline NVIDIA evidence into GPU facts: no NVML binding, no network, plain text in.

Three sources, each optional: the kernel driver's /proc/driver/nvidia/version, the CSV from
``nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader`` and
``lspci -nn`` (NVIDIA's PCI vendor id is 10de). The kernel file is the authority on the
driver version: it exists only while the driver is loaded, and nvidia-smi may be missing or
fail (library/driver mismatch) even then.
"""

from __future__ import annotations

import re
from typing import Any

_PROC_VERSION = re.compile(
    # Proprietary: "... x86_64 Kernel Module  550.54.15  <date>";
    # open: "... Open Kernel Module for x86_64  565.57.01  Release Build ...".
    r"^NVRM version:.*?Kernel Module(?: for \S+)?\s+(?P<version>\d+(?:\.\d+)+)\s",
    re.MULTILINE,
)
_DRIVER_VERSION = re.compile(r"^\d+(?:\.\d+)+$")
_MEMORY_MIB = re.compile(r"^(?P<mib>\d+)(?:\s*MiB)?$")
# PCI class 03xx is a display controller (VGA 0300, 3D 0302); the GPU's audio function is not.
_LSPCI_NVIDIA_DISPLAY = re.compile(
    r"^(?P<slot>\S+)\s.*?\[(?P<pci_class>03[0-9a-f]{2})\]:\s+(?P<description>.*?)\s*"
    r"\[10de:(?P<device_id>[0-9a-f]{4})\]",
    re.MULTILINE | re.IGNORECASE,
)


def driver_version_from_proc(text: str | None) -> str | None:
    """The loaded kernel driver's version, or None when the text carries none."""
    match = _PROC_VERSION.search(text or "")
    return match.group("version") if match else None


def _memory_mib(field: str) -> int | None:
    match = _MEMORY_MIB.match(field.strip())
    return int(match.group("mib")) if match else None


def gpus_from_nvidia_smi(text: str | None) -> list[dict[str, Any]]:
    """One entry per CSV row; error lines ("No devices were found", NVML failures) are skipped."""
    gpus = []
    for line in (text or "").splitlines():
        # GPU names may contain commas; the last two fields never do.
        fields = line.strip().rsplit(",", 2)
        if len(fields) != 3:
            continue
        name, driver, memory = (field.strip() for field in fields)
        if not name or not _DRIVER_VERSION.match(driver):
            continue
        gpus.append(
            {"name": name, "driver_version": driver, "memory_total_mib": _memory_mib(memory)}
        )
    return gpus


def nvidia_pci_devices(text: str | None) -> list[dict[str, str]]:
    """NVIDIA display controllers listed by ``lspci -nn``."""
    return [
        {
            "slot": match.group("slot"),
            "pci_class": match.group("pci_class").lower(),
            "device_id": match.group("device_id").lower(),
            "description": match.group("description"),
        }
        for match in _LSPCI_NVIDIA_DISPLAY.finditer(text or "")
    ]


def offgrid_gpu_facts(
    proc_version: str | None, nvidia_smi: str | None = None, lspci: str | None = None
) -> dict[str, Any]:
    """Everything the role asserts and records, from whichever sources were available."""
    proc_driver = driver_version_from_proc(proc_version)
    gpus = gpus_from_nvidia_smi(nvidia_smi)
    pci_devices = nvidia_pci_devices(lspci)
    smi_driver = gpus[0]["driver_version"] if gpus else None
    driver_source = "proc" if proc_driver else ("nvidia-smi" if smi_driver else None)
    return {
        "nvidia_hardware": bool(proc_driver or gpus or pci_devices),
        "driver_loaded": proc_driver is not None,
        "driver_version": proc_driver or smi_driver,
        "driver_source": driver_source,
        "gpu_count": len(gpus) or len(pci_devices),
        "gpus": gpus,
        "pci_devices": pci_devices,
        "memory_total_mib": sum(gpu["memory_total_mib"] or 0 for gpu in gpus),
    }


class FilterModule:
    """Ansible entry point: ``{{ proc_text | offgrid_gpu_parse(smi_csv, lspci_text) }}``."""

    def filters(self) -> dict[str, Any]:
        return {"offgrid_gpu_parse": offgrid_gpu_facts}

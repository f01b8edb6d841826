"""The machine's NVIDIA GPUs as the driver reports them (nvidia-smi), for the report.

The query is the one the offgrid_gpu role makes (name, driver version, memory); the CUDA
version the driver supports comes from nvidia-smi's own header. No NVIDIA driver is a fact
too (no GPU to offload to), not an error.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from auditor.inventory.interface import GpuDevice, GpuFacts

QUERY = ("--query-gpu=name,driver_version,memory.total", "--format=csv,noheader")
TIMEOUT_S = 20.0
_DRIVER = re.compile(r"^[0-9]+(\.[0-9]+)+$")
_MEMORY = re.compile(r"^(\d+)\s*MiB$")
_CUDA = re.compile(r"CUDA Version:\s*([0-9.]+)")


def parse_devices(text: str) -> tuple[GpuDevice, ...]:
    """One device per CSV row; nvidia-smi's error lines are skipped (names may hold commas)."""
    devices = []
    for line in text.splitlines():
        fields = [f.strip() for f in line.strip().rsplit(",", 2)]
        if len(fields) != 3 or not fields[0] or not _DRIVER.match(fields[1]):
            continue
        memory = _MEMORY.match(fields[2])
        devices.append(GpuDevice(fields[0], fields[1], int(memory.group(1)) if memory else None))
    return tuple(devices)


def _run(argv: list[str]) -> tuple[int, str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return -1, str(exc)
    return done.returncode, done.stdout + done.stderr


def collect() -> GpuFacts:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return GpuFacts((), None, "nvidia-smi", "nvidia-smi not found (no NVIDIA driver)")
    code, output = _run([exe, *QUERY])
    devices = parse_devices(output) if code == 0 else ()
    error = None if code == 0 else (output.strip().splitlines() or [f"exit {code}"])[0][:300]
    if code == 0 and not devices:
        error = "nvidia-smi listed no GPU"
    header_code, header = _run([exe])
    cuda = _CUDA.search(header) if header_code == 0 else None
    return GpuFacts(devices, cuda.group(1) if cuda else None, exe, error)

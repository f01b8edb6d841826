"""A STAND-IN for ``nvidia-smi``, for tests only: the project's machines have no NVIDIA GPU.

The script it writes answers the one query the GPU role makes with a RECORDED output (see
tests/unit/data/gpu/SOURCES.md) and fails like the real tool on anything else, so the role's
GPU path runs on a machine without a GPU.
"""

from __future__ import annotations

import shlex
from pathlib import Path

QUERY = "--query-gpu=name,driver_version,memory.total"


def script(recorded_output: str, exit_code: int = 0) -> str:
    """Shell source of the stand-in: prints ``recorded_output`` for the role's query."""
    return (
        "#!/bin/sh\n"
        "# offgrid TEST STAND-IN for nvidia-smi: NOT NVIDIA's tool. It replays a recorded\n"
        "# output (tests/unit/data/gpu/) for the query the offgrid_gpu role makes.\n"
        f'if [ "$1" = {shlex.quote(QUERY)} ]; then\n'
        f"  printf '%s' {shlex.quote(recorded_output)}\n"
        f"  exit {exit_code}\n"
        "fi\n"
        'echo "nvidia-smi stand-in: unsupported arguments: $*" >&2\n'
        "exit 2\n"
    )


def install(path: Path, recorded_output: str, exit_code: int = 0) -> Path:
    """Write the stand-in as an executable at ``path``."""
    path.write_text(script(recorded_output, exit_code), encoding="utf-8")
    path.chmod(0o755)
    return path

"""What an engine's command line says, and what its binary prints when asked its version."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from auditor.inventory.interface import ProcessFact

VERSION_TIMEOUT_S = 5.0


def basename(path: str | None) -> str:
    return os.path.basename(path) if path else ""


def names_of(fact: ProcessFact) -> set[str]:
    """The names a process goes by: its name, its executable's and argv[0]'s basenames."""
    argv = fact.cmdline
    return {fact.name, basename(fact.exe), basename(argv[0] if argv else None)}


def program(fact: ProcessFact) -> tuple[str, tuple[str, ...]]:
    """The program a process runs and its arguments; a script run by an interpreter
    (`python3 /path/llama-server --port 1`) is that script."""
    argv = fact.cmdline
    if len(argv) > 1 and basename(argv[0]).startswith("python") and not argv[1].startswith("-"):
        return basename(argv[1]), tuple(argv[2:])
    return (basename(argv[0]) if argv else fact.name), tuple(argv[1:])


def option(argv: Sequence[str], *names: str) -> str | None:
    """The value of --name VALUE or --name=VALUE in a command line (last one wins)."""
    value = None
    for index, arg in enumerate(argv):
        for name in names:
            if arg == name and index + 1 < len(argv):
                value = argv[index + 1]
            elif arg.startswith(name + "="):
                value = arg[len(name) + 1 :]
    return value


def run_version(cmd: Sequence[str]) -> str | None:
    """stdout and stderr of a version command that exited 0, else None."""
    try:
        done = subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=VERSION_TIMEOUT_S, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout + "\n" + done.stderr).strip() if done.returncode == 0 else None

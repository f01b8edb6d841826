"""Status lines from the workstation harness, on stderr through the project's one console."""

from __future__ import annotations

from auditor.console import Console

_console = Console()


def info(text: str) -> None:
    _console.info(f"workstation: {text}")


def out(text: str) -> None:
    _console.out(text)

"""What a subcommand module provides."""

from __future__ import annotations

import argparse
from typing import Protocol

from auditor.console import Console


class Command(Protocol):
    NAME: str
    HELP: str

    def register(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace, console: Console) -> int: ...

"""The one place that writes to the terminal.

Commands receive a Console and never print themselves, so tests can capture
output and a report written to stdout is never interleaved with progress bars.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console as RichConsole
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Console:
    def __init__(self, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self._stdout = stdout if stdout is not None else sys.stdout
        self._stderr = stderr if stderr is not None else sys.stderr
        self._rich_err = RichConsole(file=self._stderr, highlight=False, soft_wrap=True)

    def out(self, text: str) -> None:
        """Primary output (a report, a table): stdout."""
        self._stdout.write(text if text.endswith("\n") else text + "\n")
        self._stdout.flush()

    def info(self, text: str) -> None:
        """Progress and status lines: stderr, so stdout stays machine-readable."""
        self._rich_err.print(text, markup=False)

    def warning(self, text: str) -> None:
        """Something the reader must not miss that is not a failure: stderr, marked."""
        self._rich_err.print(f"offgrid: warning: {text}", markup=False, style="bold yellow")

    def error(self, text: str) -> None:
        self._rich_err.print(f"offgrid: error: {text}", markup=False)

    def traceback(self, text: str) -> None:
        """A crash's traceback: plain stderr (the journal keeps it), after the one-line error."""
        self._stderr.write(text if text.endswith("\n") else text + "\n")
        self._stderr.flush()

    @property
    def rich(self) -> RichConsole:
        """For tables and rules rendered by rich on stderr."""
        return self._rich_err

    def progress(self, *, transient: bool = True) -> Progress:
        """A progress display on stderr; silent when stderr is not a terminal."""
        return Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self._rich_err,
            transient=transient,
            disable=not self._rich_err.is_terminal,
        )

"""A byte-counting progress bar for long hashing and copying work (on stderr, via Console)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from auditor.console import Console
from auditor.models.hashing import Progress


@contextlib.contextmanager
def byte_progress(console: Console, description: str, total: int | None) -> Iterator[Progress]:
    with console.progress() as progress:
        task = progress.add_task(description, total=total)

        def advance(count: int) -> None:
            progress.advance(task, count)  # rich's Progress locks: safe from hashing threads

        yield advance

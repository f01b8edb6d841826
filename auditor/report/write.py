"""Write reports to disk: atomically, never through a symlink, never invalid."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from auditor.fsutil import atomic_write_text
from auditor.report.model import Report
from auditor.report.render import FILE_SUFFIXES, render
from auditor.report.validate import ensure_valid

# node_exporter's textfile collector runs unprivileged: the metrics file must be world-readable
# (it holds only control ids and statuses). Every other format stays group-readable at most.
PUBLIC_FORMATS = frozenset({"prometheus"})


def file_mode(fmt: str) -> int:
    return 0o644 if fmt in PUBLIC_FORMATS else 0o640


def write_report(report: Report, fmt: str, path: Path) -> Path:
    """Render `report` as `fmt` and write it to `path` in one atomic step."""
    ensure_valid(report)  # every format is derived from this model: check it once
    atomic_write_text(path, render(report, fmt), mode=file_mode(fmt))
    return path


def write_all(report: Report, directory: Path, stem: str, formats: Sequence[str]) -> list[Path]:
    """Write one file per format, `<directory>/<stem><suffix>`; returns their paths.

    Everything is rendered before the first file is written, so a format that
    cannot be rendered leaves no partial set behind.
    """
    ensure_valid(report)
    rendered = [(fmt, render(report, fmt)) for fmt in dict.fromkeys(formats)]
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt, text in rendered:
        path = directory / f"{stem}{FILE_SUFFIXES[fmt]}"
        atomic_write_text(path, text, mode=file_mode(fmt))
        paths.append(path)
    return paths

"""Read a saved JSON report back into the Report model (to convert its format)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from auditor import safeio
from auditor.checks.interface import Evidence, Status
from auditor.errors import InputError
from auditor.report.model import ControlResult, HostInfo, Report, Waiver
from auditor.report.validate import validate

# A saved report larger than this is not something offgrid wrote.
MAX_REPORT_BYTES = 64 * 1024 * 1024


def read_json(path: Path) -> Any:
    """The parsed JSON in `path`; any reason it cannot be read is an InputError."""
    return safeio.load_json(path, MAX_REPORT_BYTES)


@contextmanager
def shape_guard(source: str) -> Iterator[None]:
    """Around code that reads a loaded report: a part of the wrong shape that the schema lets
    through (sections are open-ended) is bad input, exit 2, not a crash."""
    try:
        yield
    except (TypeError, AttributeError, LookupError, ValueError, ArithmeticError) as exc:
        raise InputError(
            f"{source}: not a usable offgrid report: a section has an unexpected shape ({exc})"
        ) from None


def _control(data: Mapping[str, Any]) -> ControlResult:
    waiver = data["waiver"]
    return ControlResult(
        id=data["id"],
        family=data["family"],
        title=data["title"],
        severity=data["severity"],
        status=Status(data["status"]),
        summary=data["summary"],
        evidence=tuple(Evidence(e["label"], e["value"]) for e in data["evidence"]),
        rationale=data["rationale"],
        remediation=data["remediation"],
        references={name: tuple(refs) for name, refs in data["references"].items()},
        waiver=Waiver(**waiver) if waiver is not None else None,
    )


def from_dict(data: Mapping[str, Any]) -> Report:
    """The Report that `to_dict` turned into `data` (which must already be valid)."""
    return Report(
        tool_version=data["tool"]["version"],
        host=HostInfo(**data["host"]),
        started_at=data["started_at"],
        finished_at=data["finished_at"],
        privilege=data["privilege"],
        engine=data["engine"],
        controls=tuple(_control(c) for c in data["controls"]),
        incomplete=tuple(data["incomplete"]),
        benchmark=data["benchmark"],
        integrity=data["integrity"],
        schema_version=data["schema_version"],
        extra=data["extra"],
    )


def load_report(path: Path) -> Report:
    data = read_json(path)
    errors = validate(data)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InputError(f"{path}: not a valid offgrid report: {errors[0]}{more}")
    return from_dict(data)

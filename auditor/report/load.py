"""Read a saved JSON report back into the Report model (to convert its format)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from auditor.errors import InputError
from auditor.report.model import HostInfo, Report
from auditor.report.validate import validate
from auditor.verdicts import ControlResult, Evidence, Status, Waiver

# A saved report larger than this is not something offgrid wrote.
MAX_REPORT_BYTES = 64 * 1024 * 1024


def read_json(path: Path) -> Any:
    """The parsed JSON in `path`; any reason it cannot be read is an InputError."""
    try:
        if path.stat().st_size > MAX_REPORT_BYTES:
            raise InputError(f"{path}: larger than {MAX_REPORT_BYTES // 2**20} MiB")
        text = path.read_text("utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path}: is a directory") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON (line {exc.lineno}, column {exc.colno})") from exc


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

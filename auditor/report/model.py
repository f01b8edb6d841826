"""The compliance-and-performance report: one model that every format renders.

auditor/data/report.schema.json describes `to_dict(report)`; bump SCHEMA_VERSION
(major for breaking changes) whenever the shape changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from auditor.verdicts import ControlResult, summarize

__all__ = ["SCHEMA_VERSION", "HostInfo", "Report", "summarize", "to_dict"]

SCHEMA_VERSION = "1.0"


@dataclass(frozen=True)
class HostInfo:
    hostname: str
    os: str
    kernel: str
    machine: str


@dataclass(frozen=True)
class Report:
    tool_version: str
    host: HostInfo
    started_at: str
    finished_at: str
    privilege: Mapping[str, Any]
    engine: Mapping[str, Any] | None
    controls: tuple[ControlResult, ...]
    incomplete: tuple[str, ...] = ()
    benchmark: Mapping[str, Any] | None = None  # filled by `offgrid bench` (auditor.bench)
    integrity: Mapping[str, Any] | None = None  # filled by the OG-INT controls (auditor.models)
    schema_version: str = SCHEMA_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)


def to_dict(report: Report) -> dict[str, Any]:
    """The JSON form of the report (validated by report.schema.json)."""
    data = asdict(report)
    data["tool"] = {"name": "offgrid", "version": data.pop("tool_version")}
    data["summary"] = summarize(report.controls)
    for control in data["controls"]:
        control["status"] = str(control["status"])
        control["references"] = {k: list(v) for k, v in control["references"].items()}
    return data

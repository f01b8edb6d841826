"""The compliance-and-performance report: one model that every format renders.

auditor/data/report.schema.json describes `to_dict(report)`; bump SCHEMA_VERSION
(major for breaking changes) whenever the shape changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from auditor.bench.results import BenchmarkSection
from auditor.checks.interface import Evidence, Status
from auditor.report.bench_json import benchmark_to_json

SCHEMA_VERSION = "1.0"


@dataclass(frozen=True)
class Waiver:
    control_id: str
    justification: str
    expires: str  # ISO date
    approved_by: str | None = None


@dataclass(frozen=True)
class ControlResult:
    """A catalog control joined with its verdict, ready for any renderer."""

    id: str
    family: str
    title: str
    severity: str
    status: Status
    summary: str
    evidence: tuple[Evidence, ...]
    rationale: str
    remediation: str
    references: Mapping[str, tuple[str, ...]]
    waiver: Waiver | None = None  # a valid waiver turns a fail into "waived" in the summary


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
    benchmark: BenchmarkSection | None = None  # filled by `offgrid bench` (auditor.bench)
    integrity: Mapping[str, Any] | None = None  # filled by the OG-INT controls (auditor.models)
    schema_version: str = SCHEMA_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)


def summarize(controls: tuple[ControlResult, ...]) -> dict[str, int]:
    counts = {status.value: 0 for status in Status}
    counts["waived"] = 0
    for result in controls:
        if result.status is Status.FAIL and result.waiver is not None:
            counts["waived"] += 1
        else:
            counts[result.status.value] += 1
    counts["total"] = len(controls)
    return counts


def to_dict(report: Report) -> dict[str, Any]:
    """The JSON form of the report (validated by report.schema.json)."""
    data = asdict(report)
    data["tool"] = {"name": "offgrid", "version": data.pop("tool_version")}
    data["summary"] = summarize(report.controls)
    if report.benchmark is not None:
        data["benchmark"] = benchmark_to_json(report.benchmark)
    for control in data["controls"]:
        control["status"] = str(control["status"])
        control["references"] = {k: list(v) for k, v in control["references"].items()}
    return data

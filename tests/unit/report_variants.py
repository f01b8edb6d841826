"""Report dicts for the history, diff and fleet tests: the sample report with a chosen host,
finish time and control statuses (the summary recomputed, so every variant is valid)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from auditor.report.bench_json import benchmark_from_json
from auditor.report.model import to_dict
from auditor.verdicts import Status
from tests.unit.report_sample import sample_report


def report_data(
    host: str = "ws-07",
    finished_at: str = "2026-11-24T02:00:07+00:00",
    statuses: Mapping[str, Status] | None = None,
    benchmark: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    report = sample_report(benchmark=benchmark is not None)
    controls = tuple(
        replace(c, status=(statuses or {}).get(c.id, c.status)) for c in report.controls
    )
    report = replace(
        report,
        host=replace(report.host, hostname=host),
        finished_at=finished_at,
        controls=controls,
        benchmark=None if benchmark is None else benchmark_from_json(benchmark),
    )
    data: dict[str, Any] = json.loads(json.dumps(to_dict(report)))
    return data


def all_pass(host: str = "ws-07", finished_at: str = "2026-11-24T02:00:07+00:00") -> dict[str, Any]:
    """A report whose every control passed (no waiver left to make a fail 'waived')."""
    data = report_data(host, finished_at)
    for control in data["controls"]:
        control["status"] = "pass"
        control["waiver"] = None
    total = len(data["controls"])
    data["summary"] = dict.fromkeys(("fail", "error", "not_applicable", "waived"), 0) | {
        "pass": total,
        "total": total,
    }
    data["incomplete"] = []
    return data

"""What the HTML and Markdown templates show, computed once from a Report.

Templates only loop and print: every decision (verdict, labels, number format,
which optional benchmark parts exist) is made here, where it can be tested. The
benchmark arrives typed (auditor.bench.results); the free-form sections (engine,
integrity) are read defensively so a missing or oddly shaped part is left out instead
of breaking the report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from auditor.report.audit_view import (
    IntegrityView,
    engine_rows,
    integrity_view,
    namespace_rows,
    privilege_rows,
)
from auditor.report.benchmark_view import BenchmarkView, benchmark_view
from auditor.report.model import PrivilegeSection, Report
from auditor.report.sections import MISSING, KeyValues
from auditor.verdicts import ControlResult, effective_status, summarize

__all__ = ["ReportView", "Verdict", "build", "effective_status", "verdict"]

STATUS_LABELS = {
    "pass": "PASS",
    "fail": "FAIL",
    "error": "ERROR",
    "not_applicable": "N/A",
    "waived": "WAIVED",
}
# the summary cards use the same words as the status badges
SUMMARY_LABELS = (
    ("fail", "Failed"),
    ("error", "Error"),
    ("waived", "Waived"),
    ("pass", "Passed"),
    ("not_applicable", "N/A"),
    ("total", "Total"),
)
# the order a reader needs: what must be fixed first, what is proven last
STATUS_ORDER = {"fail": 0, "error": 1, "waived": 2, "pass": 3, "not_applicable": 4}
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
FRAMEWORK_LABELS = {
    "soc2": "SOC 2",
    "gdpr": "GDPR",
    "hipaa": "HIPAA",
    "nist": "NIST 800-53",
    "iso27001": "ISO/IEC 27001:2022",
}


@dataclass(frozen=True)
class Verdict:
    kind: str  # pass | fail | incomplete | none
    headline: str
    detail: str


@dataclass(frozen=True)
class ControlView:
    id: str
    family: str
    title: str
    severity: str
    status: str  # the effective status: a failed control with a valid waiver is "waived"
    status_label: str
    summary: str
    rationale: str
    remediation: str
    references: KeyValues
    evidence: KeyValues
    waiver: KeyValues


@dataclass(frozen=True)
class ReportView:
    title: str
    tool_version: str
    schema_version: str
    host: KeyValues
    run: KeyValues
    privilege_note: str
    privilege_limited: bool  # ran without root: some facts may be hidden
    privilege: KeyValues
    verdict: Verdict
    counts: Mapping[str, int]
    controls: tuple[ControlView, ...]
    incomplete: tuple[str, ...]
    engine: KeyValues
    integrity: IntegrityView | None
    benchmark: BenchmarkView | None
    summary_labels: tuple[tuple[str, str], ...] = SUMMARY_LABELS


def verdict(report: Report) -> Verdict:
    counts = summarize(report.controls)
    if counts["total"] == 0:
        return Verdict("none", "NO CONTROLS", "This report holds no audit results.")
    if counts["fail"]:
        detail = ", ".join(c.id for c in report.controls if effective_status(c) == "fail")
        return Verdict("fail", "FAIL", f"{counts['fail']} control(s) failed: {detail}.")
    if counts["error"] or report.incomplete:
        return Verdict(
            "incomplete",
            "INCOMPLETE",
            f"{counts['error']} control(s) could not be evaluated and "
            f"{len(report.incomplete)} item(s) could not be read: a pass is not proven.",
        )
    waived = f" ({counts['waived']} failure(s) waived)" if counts["waived"] else ""
    return Verdict("pass", "PASS", f"Every evaluated control passed{waived}.")


def _control_view(control: ControlResult) -> ControlView:
    status = effective_status(control)
    waiver: KeyValues = ()
    if control.waiver is not None:
        waiver = (
            ("Justification", control.waiver.justification),
            ("Expires", control.waiver.expires),
            ("Approved by", control.waiver.approved_by or MISSING),
        )
    return ControlView(
        id=control.id,
        family=control.family,
        title=control.title,
        severity=control.severity,
        status=status,
        status_label=STATUS_LABELS[status],
        summary=control.summary,
        rationale=control.rationale,
        remediation=control.remediation,
        references=tuple(
            (FRAMEWORK_LABELS.get(name, name), ", ".join(clauses))
            for name, clauses in control.references.items()
        ),
        evidence=tuple((e.label, e.value) for e in control.evidence),
        waiver=waiver,
    )


def failures_first(controls: Iterable[ControlView]) -> tuple[ControlView, ...]:
    """Failed, then errored, waived, passed and not-applicable; by severity, then id."""
    return tuple(
        sorted(
            controls,
            key=lambda c: (STATUS_ORDER[c.status], SEVERITY_ORDER.get(c.severity, 9), c.id),
        )
    )


def ran_as_root(privilege: PrivilegeSection) -> bool | None:
    """True/False when the privilege facts say, None when they do not."""
    if privilege.is_root is not None:
        return privilege.is_root
    return None if privilege.euid is None else privilege.euid == 0


def privilege_note(privilege: PrivilegeSection, root: bool | None) -> str:
    """The audit's own note on what its privilege hid, else one derived from it."""
    if privilege.note and privilege.note.strip():
        return privilege.note.strip()
    if root is None:
        return ""
    if root:
        return "Ran as root: every process's sockets and environment were readable."
    return (
        "Ran without root: sockets and environments of other users' processes may be "
        "hidden; see the incomplete items."
    )


def _duration(started: str, finished: str) -> str:
    try:
        seconds = (
            datetime.fromisoformat(finished) - datetime.fromisoformat(started)
        ).total_seconds()
    except (TypeError, ValueError):
        return MISSING
    return f"{seconds:.1f} s"


def build(report: Report) -> ReportView:
    host = report.host
    root = ran_as_root(report.privilege)
    return ReportView(
        title=f"offgrid report — {host.hostname}",
        tool_version=report.tool_version,
        schema_version=report.schema_version,
        host=(
            ("Host", host.hostname),
            ("OS", host.os),
            ("Kernel", host.kernel),
            ("Machine", host.machine),
        ),
        run=(
            ("Started", report.started_at),
            ("Finished", report.finished_at),
            ("Duration", _duration(report.started_at, report.finished_at)),
            ("Tool", f"offgrid {report.tool_version}"),
            ("Report schema", report.schema_version),
        ),
        privilege_note=privilege_note(report.privilege, root),
        privilege_limited=root is False,
        privilege=privilege_rows(report.privilege),
        verdict=verdict(report),
        counts=summarize(report.controls),
        controls=failures_first(_control_view(c) for c in report.controls),
        incomplete=tuple(report.incomplete),
        engine=engine_rows(report.engine) + namespace_rows(report.extra.namespaces),
        integrity=integrity_view(report.integrity),
        benchmark=benchmark_view(report.benchmark),
    )

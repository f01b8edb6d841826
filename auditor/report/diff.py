"""What changed between two reports: control verdicts, failures, benchmark figures.

A regression is a control that now fails or errors and did not before (a control new in
NEW counts when it fails), or a benchmark figure that got worse by more than the
threshold. Benchmark figures are compared by auditor.bench.compare, the same rules as
`offgrid bench compare`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from auditor.bench.compare import Change, compare
from auditor.bench.results import BenchmarkSection
from auditor.errors import InputError
from auditor.fsutil import dumps_json
from auditor.report.bench_json import benchmark_to_json
from auditor.report.model import Report
from auditor.verdicts import effective_status

BAD = frozenset({"fail", "error"})
DEFAULT_THRESHOLD_PCT = 10.0


@dataclass(frozen=True)
class ControlChange:
    id: str
    old: str | None  # effective status; None: the control is not in that report
    new: str | None

    @property
    def regressed(self) -> bool:
        return self.new in BAD and self.old not in BAD

    @property
    def resolved(self) -> bool:
        return self.old in BAD and self.new not in BAD


@dataclass(frozen=True)
class ReportDiff:
    old_label: str
    new_label: str
    controls: tuple[ControlChange, ...]  # only controls whose status changed
    new_failures: tuple[str, ...]
    resolved_failures: tuple[str, ...]
    benchmark: tuple[Change, ...]  # figures that moved by more than the threshold
    benchmark_note: str
    threshold_pct: float

    @property
    def regressions(self) -> tuple[str, ...]:
        controls = [c.id for c in self.controls if c.regressed]
        figures = [f"{c.scope} {c.metric}" for c in self.benchmark if c.worse_pct > 0]
        return tuple(controls + figures)


def _statuses(report: Report) -> dict[str, str]:
    return {control.id: effective_status(control) for control in report.controls}


def _benchmark(
    old: BenchmarkSection | None, new: BenchmarkSection | None, threshold: float
) -> tuple[tuple[Change, ...], str]:
    if old is None or new is None:
        return (), "" if old is None and new is None else "only one report has a benchmark"
    try:
        changes = compare(benchmark_to_json(old), benchmark_to_json(new))
    except InputError as exc:
        return (), f"benchmarks not compared: {exc}"
    except (KeyError, TypeError, AttributeError) as exc:
        return (), f"benchmarks not compared: malformed section ({exc!r})"
    return tuple(c for c in changes if abs(c.worse_pct) > threshold), ""


def diff_reports(
    old: Report, new: Report, old_label: str, new_label: str, threshold_pct: float
) -> ReportDiff:
    before, after = _statuses(old), _statuses(new)
    ids = list(dict.fromkeys([*before, *after]))
    changes = tuple(
        ControlChange(cid, before.get(cid), after.get(cid))
        for cid in ids
        if before.get(cid) != after.get(cid)
    )
    figures, note = _benchmark(old.benchmark, new.benchmark, threshold_pct)
    return ReportDiff(
        old_label=old_label,
        new_label=new_label,
        controls=changes,
        new_failures=tuple(c.id for c in changes if c.new == "fail"),
        resolved_failures=tuple(c.id for c in changes if c.old == "fail" and c.new != "fail"),
        benchmark=figures,
        benchmark_note=note,
        threshold_pct=threshold_pct,
    )


def _status(value: str | None) -> str:
    return value if value is not None else "absent"


def format_text(diff: ReportDiff) -> str:
    lines = [f"--- {diff.old_label}", f"+++ {diff.new_label}"]
    if not diff.controls:
        lines.append("controls: no status changed")
    for change in diff.controls:
        mark = "REGRESSED" if change.regressed else "resolved" if change.resolved else "changed"
        lines.append(f"{change.id}: {_status(change.old)} -> {_status(change.new)} ({mark})")
    lines.append(f"new failures: {', '.join(diff.new_failures) or 'none'}")
    lines.append(f"resolved failures: {', '.join(diff.resolved_failures) or 'none'}")
    if diff.benchmark_note:
        lines.append(diff.benchmark_note)
    for figure in diff.benchmark:
        lines.append(f"benchmark {figure.describe()}")
    if not diff.benchmark and not diff.benchmark_note:
        lines.append(f"benchmark: nothing moved by more than {diff.threshold_pct:g}%")
    verdict = ", ".join(diff.regressions)
    lines.append(f"regressions: {verdict}" if verdict else "regressions: none")
    return "\n".join(lines) + "\n"


def to_dict(diff: ReportDiff) -> dict[str, Any]:
    return {
        "old": diff.old_label,
        "new": diff.new_label,
        "controls": [asdict(c) | {"regressed": c.regressed} for c in diff.controls],
        "new_failures": list(diff.new_failures),
        "resolved_failures": list(diff.resolved_failures),
        "benchmark": [asdict(c) | {"worse_pct": round(c.worse_pct, 3)} for c in diff.benchmark],
        "benchmark_note": diff.benchmark_note,
        "threshold_pct": diff.threshold_pct,
        "regressions": list(diff.regressions),
    }


def format_json(diff: ReportDiff) -> str:
    return dumps_json(to_dict(diff)) + "\n"

"""Run every catalog control against the facts and join verdicts with the catalog."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from auditor.checks import all_checks
from auditor.checks.catalog import load_catalog
from auditor.checks.interface import CheckFn, Control
from auditor.checks.waivers import WaiverSet
from auditor.exitcodes import ExitCode
from auditor.inventory.interface import Facts
from auditor.verdicts import ControlResult, Evidence, Result, Status, effective_status


def evaluate(control: Control, check_fn: CheckFn | None, facts: Facts) -> Result:
    """One control's verdict; a check that raises is an `error`, never a crash or a pass."""
    engine = facts.engine
    if engine is not None and engine.kind not in control.engines:
        return Result(
            control.id, Status.NOT_APPLICABLE, f"does not apply to the {engine.kind} engine"
        )
    if check_fn is None:
        return Result(control.id, Status.ERROR, "no check implements this control")
    try:
        verdict = check_fn(facts)
    except Exception as exc:  # any failure of a check must become evidence, not a crash
        return Result(
            control.id, Status.ERROR, f"the check failed: {type(exc).__name__}: {exc}",
            (Evidence("exception", f"{type(exc).__name__}: {exc}"),),
        )  # fmt: skip
    return Result(control.id, verdict.status, verdict.summary, verdict.evidence)


def join(control: Control, verdict: Result, waivers: WaiverSet | None) -> ControlResult:
    waiver = waivers.active.get(control.id) if waivers else None
    return ControlResult(
        id=control.id,
        family=control.family,
        title=control.title,
        severity=control.severity.value,
        status=verdict.status,
        summary=verdict.summary,
        evidence=verdict.evidence,
        rationale=control.rationale,
        remediation=control.remediation,
        references=control.references,
        waiver=waiver if verdict.status is Status.FAIL else None,
    )


def run_controls(
    facts: Facts,
    waivers: WaiverSet | None = None,
    catalog: Mapping[str, Control] | None = None,
    checks: Mapping[str, CheckFn] | None = None,
) -> tuple[ControlResult, ...]:
    catalog = catalog if catalog is not None else load_catalog()
    checks = checks if checks is not None else all_checks()
    return tuple(
        join(control, evaluate(control, checks.get(cid), facts), waivers)
        for cid, control in sorted(catalog.items())
    )


def exit_code(results: Iterable[ControlResult]) -> ExitCode:
    """1 if an unwaived control failed, else 3 if one could not be evaluated, else 0."""
    listed = tuple(results)
    if any(effective_status(r) == Status.FAIL for r in listed):
        return ExitCode.FAILED
    if any(r.status is Status.ERROR for r in listed):
        return ExitCode.INCOMPLETE
    return ExitCode.OK

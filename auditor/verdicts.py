"""What a control concluded: the vocabulary checks produce and every report format consumes.

Neither the checks nor the report layer owns it, so neither imports the other. The one rule
that turns a verdict into what a reader sees lives here too: a failure with a valid waiver
is "waived"; everything else is shown as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

WAIVED = "waived"  # the effective status of a failure with a valid waiver


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 - a status, not a password
    FAIL = "fail"
    ERROR = "error"  # could not be evaluated: never silently a pass
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class Evidence:
    """What a check looked at: a label and the observed value, as text."""

    label: str
    value: str


@dataclass(frozen=True)
class Finding:
    """What a check function answers; the runner adds the control id it was registered for."""

    status: Status
    summary: str
    evidence: tuple[Evidence, ...] = ()


def finding(status: Status, summary: str, evidence: Iterable[tuple[str, str]] = ()) -> Finding:
    return Finding(status, summary, tuple(Evidence(k, v) for k, v in evidence))


@dataclass(frozen=True)
class Result:
    """A check's finding for one control."""

    control_id: str
    status: Status
    summary: str
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)


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
    waiver: Waiver | None = None  # a valid waiver turns a fail into "waived"


@dataclass(frozen=True)
class Waiver:
    control_id: str
    justification: str
    expires: str  # ISO date
    approved_by: str | None = None


def effective_status(control: ControlResult) -> str:
    """What a reader sees: "waived" for a failure with a valid waiver, else the status."""
    if control.status is Status.FAIL and control.waiver is not None:
        return WAIVED
    return control.status.value


def summarize(controls: Iterable[ControlResult]) -> dict[str, int]:
    """How many controls have each effective status, and the total."""
    counts = {status.value: 0 for status in Status} | {WAIVED: 0}
    total = 0
    for control in controls:
        counts[effective_status(control)] += 1
        total += 1
    counts["total"] = total
    return counts


class Unanswered(Exception):
    """Raised by a check that cannot reach a verdict; the runner records `status`."""

    status = Status.ERROR

    def __init__(self, summary: str, evidence: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(summary)
        self.summary = summary
        self.evidence = tuple(Evidence(k, v) for k, v in evidence)


class CannotEvaluate(Unanswered):
    """A fact the check needs is missing or unreadable: the control is an `error`."""


class DoesNotApply(Unanswered):
    """The control has nothing to judge on this machine (no lock file, no IDE user)."""

    status = Status.NOT_APPLICABLE

"""The contract between the control catalog and the check functions.

A check is a pure function of the collected Facts that returns a Finding, or raises
CannotEvaluate / DoesNotApply when it cannot reach a verdict. `@check(ID)` registers it
for one catalog control; calling the decorated function runs it the way the audit does,
so it answers a Result stamped with that id.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from auditor.engine_kind import EngineKind
from auditor.verdicts import Finding, Result, Unanswered

if TYPE_CHECKING:
    from auditor.inventory.interface import Facts


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True)
class Control:
    """One entry of the catalog (auditor/data/controls.toml)."""

    id: str
    family: str
    title: str
    severity: Severity
    rationale: str
    remediation: str
    references: Mapping[str, tuple[str, ...]]
    engines: tuple[EngineKind, ...]  # engines the control applies to; others get not_applicable


CheckBody = Callable[["Facts"], Finding]
CheckFn = Callable[["Facts"], Result]

_REGISTRY: dict[str, CheckFn] = {}


def answer(control_id: str, body: CheckBody, facts: Facts) -> Result:
    """Run one check body: its finding, or the verdict it raised, under `control_id`."""
    try:
        found = body(facts)
    except Unanswered as unanswered:
        return Result(control_id, unanswered.status, unanswered.summary, unanswered.evidence)
    return Result(control_id, found.status, found.summary, found.evidence)


def check(control_id: str) -> Callable[[CheckBody], CheckFn]:
    """Register a function as the implementation of one catalog control."""

    def register(body: CheckBody) -> CheckFn:
        if control_id in _REGISTRY:
            raise RuntimeError(f"control {control_id} implemented twice")

        @functools.wraps(body)
        def run(facts: Facts) -> Result:
            return answer(control_id, body, facts)

        _REGISTRY[control_id] = run
        return run

    return register


def registered_checks() -> Mapping[str, CheckFn]:
    return dict(_REGISTRY)

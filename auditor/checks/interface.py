"""The contract between the control catalog, the check functions and the report."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from auditor.inventory.interface import Facts


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 - a status, not a password
    FAIL = "fail"
    ERROR = "error"  # could not be evaluated: never silently a pass
    NOT_APPLICABLE = "not_applicable"


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
    engines: tuple[str, ...]  # engines the control applies to; others get not_applicable


@dataclass(frozen=True)
class Evidence:
    """What a check looked at: a label and the observed value, as text."""

    label: str
    value: str


@dataclass(frozen=True)
class Result:
    control_id: str
    status: Status
    summary: str
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)


CheckFn = Callable[["Facts"], Result]

_REGISTRY: dict[str, CheckFn] = {}


def check(control_id: str) -> Callable[[CheckFn], CheckFn]:
    """Register a function as the implementation of one catalog control."""

    def register(fn: CheckFn) -> CheckFn:
        if control_id in _REGISTRY:
            raise RuntimeError(f"control {control_id} implemented twice")
        _REGISTRY[control_id] = fn
        return fn

    return register


def registered_checks() -> Mapping[str, CheckFn]:
    return dict(_REGISTRY)

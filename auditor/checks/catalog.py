"""Load the control catalog, the single source of truth for ids and their prose."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

from auditor.checks.interface import Control, Severity
from auditor.engine_kind import engine_kind

_REQUIRED = ("family", "title", "severity", "rationale", "remediation", "references", "engines")


def _control(control_id: str, entry: dict[str, Any]) -> Control:
    missing = [key for key in _REQUIRED if key not in entry]
    if missing:
        raise ValueError(f"catalog entry {control_id} lacks {', '.join(missing)}")
    return Control(
        id=control_id,
        family=entry["family"],
        title=entry["title"],
        severity=Severity(entry["severity"]),
        rationale=" ".join(entry["rationale"].split()),
        remediation=" ".join(entry["remediation"].split()),
        references={k: tuple(v) for k, v in entry["references"].items()},
        engines=tuple(engine_kind(name) for name in entry["engines"]),
    )


@cache
def load_catalog() -> dict[str, Control]:
    text = resources.files("auditor.data").joinpath("controls.toml").read_text("utf-8")
    raw = tomllib.loads(text)
    return {cid: _control(cid, entry) for cid, entry in raw["controls"].items()}

"""Waivers: a file keyed by control id with a justification and an expiry date.

TOML:
    [OG-NET-04]
    justification = "egress firewall rolls out next sprint"
    expires = 2026-12-31
    approved_by = "security@example.org"

or the same as JSON ({"OG-NET-04": {"justification": …, "expires": "2026-12-31"}}).
A waiver is valid through its expiry date; an expired waiver counts as none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor import safeio
from auditor.errors import InputError
from auditor.verdicts import Waiver


@dataclass(frozen=True)
class WaiverSet:
    active: Mapping[str, Waiver]
    expired: tuple[Waiver, ...]


def _parse_text(path: Path, text: str) -> dict[str, Any]:
    source = f"waivers file {path}"
    parse = safeio.parse_json if path.suffix == ".json" else safeio.parse_toml
    data = parse(text, source)
    if not isinstance(data, dict):
        raise InputError(f"waivers file {path}: expected a table keyed by control id")
    waivers = data.get("waivers", data)
    if not isinstance(waivers, dict):
        raise InputError(f"waivers file {path}: 'waivers' must be a table")
    return waivers


def _expiry(path: Path, control_id: str, value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise InputError(f"waivers file {path}: {control_id}.expires must be an ISO date (YYYY-MM-DD)")


def _waiver(path: Path, control_id: str, entry: object) -> Waiver:
    if not isinstance(entry, dict):
        raise InputError(f"waivers file {path}: {control_id} must be a table")
    unknown = set(entry) - {"justification", "expires", "approved_by"}
    if unknown:
        raise InputError(f"waivers file {path}: {control_id} has unknown key(s) {sorted(unknown)}")
    justification = entry.get("justification")
    if not isinstance(justification, str) or not justification.strip():
        raise InputError(f"waivers file {path}: {control_id} needs a justification")
    if "expires" not in entry:
        raise InputError(f"waivers file {path}: {control_id} needs an expires date")
    approved_by = entry.get("approved_by")
    if approved_by is not None and not isinstance(approved_by, str):
        raise InputError(f"waivers file {path}: {control_id}.approved_by must be text")
    expires = _expiry(path, control_id, entry["expires"])
    return Waiver(control_id, justification.strip(), expires.isoformat(), approved_by)


def load_waivers(path: Path, known_ids: Set[str], today: dt.date | None = None) -> WaiverSet:
    """Read and validate a waivers file; unknown control ids and bad fields are input errors."""
    text = safeio.read_text(path, what="waivers file")
    today = today or dt.date.today()
    active: dict[str, Waiver] = {}
    expired: list[Waiver] = []
    for control_id, entry in _parse_text(path, text).items():
        if control_id not in known_ids:
            raise InputError(f"waivers file {path}: unknown control id {control_id!r}")
        waiver = _waiver(path, control_id, entry)
        if dt.date.fromisoformat(waiver.expires) < today:
            expired.append(waiver)
        else:
            active[control_id] = waiver
    return WaiverSet(active, tuple(expired))

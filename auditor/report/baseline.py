"""The egress baseline of the previous audit: the last report of this host the history vouches for.

The history must verify as a whole (chain, HMACs, report hashes) before anything in it is
believed; the report is read again and checked against its entry's sha256. A history that
cannot be verified, or a baseline that is not what an audit writes, is an error the
continuity control reports, never a first night.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from auditor import safeio
from auditor.errors import InputError
from auditor.inventory.interface import PreviousAudit, RecorderState
from auditor.report import history
from auditor.report.load import recorder_state


def states_from_report(data: Any) -> tuple[RecorderState, ...]:
    """The recorded sources' states a report carries; ValueError when they are malformed."""
    extra = data.get("extra") if isinstance(data, dict) else None
    if not isinstance(extra, dict):
        raise ValueError("the report has no extra section")
    recording = extra.get("egress_recording", [])
    if not isinstance(recording, list):
        raise ValueError("extra.egress_recording is not a list")
    states = []
    for item in recording:
        if not isinstance(item, dict):
            raise ValueError("extra.egress_recording holds a non-object")
        states.append(recorder_state(item.get("state")))
    return tuple(states)


def _report(directory: Path, entry: history.Entry) -> Any:
    data = safeio.read_bytes(
        history.report_path(directory, entry), safeio.REPORT_LIMIT, follow=False
    )
    if history.sha256_hex(data) != entry.report_sha256:
        raise InputError(f"entry {entry.seq}: its report changed while it was read")
    return json.loads(data)


def _is_audit(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("controls"), list)


def _unvouched(directory: Path) -> tuple[str | None, tuple[history.Entry, ...]]:
    """(why the history cannot vouch for its reports, or None; its entries)."""
    try:
        result = history.verify(directory)
    except InputError as exc:
        return f"history unreadable: {exc}", ()
    if not result.entries and not result.problems and result.pending is None:
        return None, ()  # an empty history (no key yet either): nothing to vouch for
    if result.key_problem is not None:
        return f"the history is unproven: its HMACs cannot be checked ({result.key_problem})", ()
    if result.problems:
        return f"the history is tampered: {result.problems[0].describe()}", ()
    return None, result.entries


def previous_audit(directory: Path, hostname: str) -> PreviousAudit:
    """The baseline of `hostname`'s last report in `directory`; entry None: there is none."""
    if not directory.exists():
        return PreviousAudit(str(directory), None, None)
    error, entries = _unvouched(directory)
    if error is not None:
        return PreviousAudit(str(directory), None, None, error=error)
    for entry in reversed(entries):
        if entry.host != hostname:
            continue
        try:
            data = _report(directory, entry)
            if not _is_audit(data):
                continue
            states = states_from_report(data)
        except (InputError, ValueError, TypeError) as exc:
            return PreviousAudit(
                str(directory), entry.seq, entry.finished_at,
                error=f"entry {entry.seq}'s egress baseline is unusable: {exc}",
            )  # fmt: skip
        return PreviousAudit(str(directory), entry.seq, entry.finished_at, states)
    return PreviousAudit(str(directory), None, None)

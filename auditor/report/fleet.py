"""One summary of a fleet's newest reports: reports/<host>/*.json, as audit.yml fetches them.

Per host the newest valid report (by finished_at) gives the verdict; a report older than
max_age_hours makes the host stale (a nightly timer that stopped is a finding, not a pass).
Every JSON file that cannot be read or is not a valid report is listed, never skipped, and
so is every host directory that cannot be listed: a compliance summary that silently drops a
host is worse than none. A host whose last audit run crashed (audit.yml leaves
reports/<host>/offgrid-run.failed, see RUN_FAILED_FILE) is `crashed`, whatever its reports say.
A host whose fetched report history (reports/<host>/history/, see HISTORY_DIR) fails
verification is `tampered`, whatever else is true of it: its reports prove nothing. The
history's HMAC key stays on the host, so here the hash chain and every stored report's
sha256 are checked, not the HMACs (the summary says so).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditor import safeio
from auditor.errors import InputError
from auditor.report import history
from auditor.report.load import from_dict, read_json
from auditor.report.model import Report, summarize
from auditor.report.validate import validate
from auditor.report.view import effective_status, verdict

FLEET_SCHEMA = "offgrid-fleet/2"
DEFAULT_MAX_AGE_HOURS = 36.0
MAX_AGE_LIMIT_HOURS = 1e6
# Written by playbooks/audit.yml when the auditor itself failed on a host (exit not 0, 1, 3);
# removed by the next run that gives a verdict.
RUN_FAILED_FILE = "offgrid-run.failed"
# Where audit.yml fetches each host's report history (chain, reports, signatures; no key).
HISTORY_DIR = "history"


@dataclass(frozen=True)
class BadFile:
    host: str
    file: str
    reason: str


@dataclass(frozen=True)
class HistoryState:
    """A fetched report history as `history verify` found it on the controller."""

    entries: int
    head_hash: str | None
    problems: tuple[str, ...]  # empty: the chain and every stored report are as appended
    notes: tuple[str, ...]  # what was not checked (the HMACs: the key stays on the host)

    @property
    def intact(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class HostSummary:
    name: str
    verdict: str  # pass | fail | incomplete | none | stale | invalid | crashed
    report_verdict: str | None  # the newest report's own verdict (None: no valid report)
    file: str | None
    finished_at: str | None
    age_hours: float | None
    stale: bool
    counts: Mapping[str, int]
    failing: tuple[str, ...]
    errors: tuple[str, ...]
    auditor_run: str | None = None  # why the last audit run on the host failed (None: it did not)
    history: HistoryState | None = None  # the fetched history's verification (None: none fetched)


@dataclass(frozen=True)
class ControlSummary:
    id: str
    title: str
    severity: str
    failing_hosts: tuple[str, ...]
    error_hosts: tuple[str, ...]


@dataclass(frozen=True)
class Fleet:
    generated_at: str
    max_age_hours: float
    verdict: str  # pass | fail
    hosts: tuple[HostSummary, ...]
    controls: tuple[ControlSummary, ...]  # controls that fail or error on at least one host
    bad_files: tuple[BadFile, ...]

    @property
    def findings(self) -> int:
        return sum(1 for host in self.hosts if host.verdict != "pass") + len(self.bad_files)


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))


def _load(path: Path) -> Report | str:
    """The report in `path`, or why it is not one."""
    try:
        data = read_json(path)
    except InputError as exc:
        return str(exc).removeprefix(f"{path}: ")
    errors = validate(data)
    if errors:
        return f"not a valid offgrid report: {errors[0]}"
    try:
        if _parse_time(data["finished_at"]).tzinfo is None:
            return "finished_at has no time zone"
    except ValueError:
        return f"finished_at {str(data['finished_at'])[:40]!r} is not a timestamp"
    return from_dict(data)


def _run_failure(host_dir: Path) -> str | None:
    """The first line of the host's run-failure marker, if audit.yml left one."""
    marker = host_dir / RUN_FAILED_FILE
    try:
        if not safeio.present(marker):
            return None
    except InputError:
        return None  # the directory cannot be searched: listed as unreadable already
    try:
        text = safeio.read_text(marker, 64 * 1024, follow=False)
    except InputError as exc:
        return f"the auditor failed (marker unreadable: {exc})"
    first = text.strip().splitlines()[0] if text.strip() else "no detail"
    return f"the auditor failed: {first[:200]}"


def _history_state(host_dir: Path) -> HistoryState | None:
    """The fetched history's verification; None when audit.yml fetched none for the host."""
    directory = host_dir / HISTORY_DIR
    try:
        mode = os.lstat(directory).st_mode
    except OSError:
        return None  # none fetched, or the host directory cannot be searched (listed already)
    if not stat.S_ISDIR(mode):
        kind = "a symbolic link: not followed" if stat.S_ISLNK(mode) else "not a directory"
        return HistoryState(0, None, (f"the history is {kind}",), ())
    try:
        result = history.verify(directory)
    except InputError as exc:
        return HistoryState(0, None, (f"the history cannot be verified: {exc}",), ())
    head = result.head
    problems = tuple(p.describe() for p in result.problems)
    if result.pending is not None:
        problems += (result.pending,)
    if not result.entries and not problems:
        problems = ("the history holds no entry: nothing the host reported is chained",)
    return HistoryState(
        len(result.entries), head.entry_hash if head else None, problems, result.notes
    )


def _scan_host(host_dir: Path) -> tuple[list[tuple[Path, Report]], list[BadFile]]:
    """The host's valid reports and every file (or the directory itself) that is not one."""
    loaded: list[tuple[Path, Report]] = []
    bad: list[BadFile] = []
    try:
        names = sorted(e.name for e in os.scandir(host_dir) if e.name.endswith(".json"))
    except OSError as exc:
        reason = f"cannot list the host's reports: {exc.strerror or exc}"
        return [], [BadFile(host_dir.name, "(directory)", reason)]
    for name in names:
        result = _load(host_dir / name)
        if isinstance(result, str):
            bad.append(BadFile(host_dir.name, name, result))
        else:
            loaded.append((host_dir / name, result))
    return loaded, bad


def _host_summary(
    name: str, reports: list[tuple[Path, Report]], now: datetime, max_age: float
) -> HostSummary:
    if not reports:
        return HostSummary(name, "invalid", None, None, None, None, False, {}, (), ())
    path, report = max(reports, key=lambda item: _parse_time(item[1].finished_at))
    age = (now - _parse_time(report.finished_at)).total_seconds() / 3600
    stale = age > max_age
    own = verdict(report).kind
    statuses = {c.id: effective_status(c) for c in report.controls}
    return HostSummary(
        name=name,
        verdict="stale" if stale and own == "pass" else own,
        report_verdict=own,
        file=path.name,
        finished_at=report.finished_at,
        age_hours=round(age, 2),
        stale=stale,
        counts=summarize(report.controls),
        failing=tuple(cid for cid, s in statuses.items() if s == "fail"),
        errors=tuple(cid for cid, s in statuses.items() if s == "error"),
    )


def _control_summaries(
    hosts: tuple[HostSummary, ...], reports: Mapping[str, Report]
) -> tuple[ControlSummary, ...]:
    catalog: dict[str, tuple[str, str]] = {}
    for report in reports.values():
        for control in report.controls:
            catalog.setdefault(control.id, (control.title, control.severity))
    summaries = []
    for cid in sorted(catalog):
        failing = tuple(h.name for h in hosts if cid in h.failing)
        erroring = tuple(h.name for h in hosts if cid in h.errors)
        if failing or erroring:
            title, severity = catalog[cid]
            summaries.append(ControlSummary(cid, title, severity, failing, erroring))
    summaries.sort(key=lambda c: (-len(c.failing_hosts), -len(c.error_hosts), c.id))
    return tuple(summaries)


def _host_dirs(directory: Path) -> list[Path]:
    try:
        entries = list(os.scandir(directory))
    except OSError as exc:
        raise InputError(f"{directory}: cannot list: {exc.strerror or exc}") from None
    return sorted(Path(e.path) for e in entries if e.is_dir())


def _judge_host(
    host_dir: Path,
    loaded: list[tuple[Path, Report]],
    has_bad: bool,
    now: datetime,
    max_age: float,
) -> HostSummary | None:
    """The host's summary: its newest report, then a failed run, then a tampered history."""
    crashed = _run_failure(host_dir)
    chained = _history_state(host_dir)
    summary = _host_summary(host_dir.name, loaded, now, max_age)
    if summary.file is None and not has_bad and crashed is None and chained is None:
        return None
    if crashed is not None:
        summary = replace(summary, verdict="crashed", auditor_run=crashed)
    if chained is not None:
        verdict = summary.verdict if chained.intact else "tampered"
        summary = replace(summary, history=chained, verdict=verdict)
    return summary


def aggregate(
    directory: Path, now: datetime | None = None, max_age_hours: float = DEFAULT_MAX_AGE_HOURS
) -> Fleet:
    """Summarize every reports/<host>/ directory under `directory`."""
    if not directory.is_dir():
        raise InputError(f"{directory}: no such directory")
    now = now or datetime.now(UTC)
    hosts: list[HostSummary] = []
    newest: dict[str, Report] = {}
    bad: list[BadFile] = []
    for host_dir in _host_dirs(directory):
        loaded, host_bad = _scan_host(host_dir)
        bad += host_bad
        summary = _judge_host(host_dir, loaded, bool(host_bad), now, max_age_hours)
        if summary is None:
            continue  # a directory without any JSON is not a host audit.yml fetched to
        hosts.append(summary)
        if loaded:
            newest[host_dir.name] = max(loaded, key=lambda i: _parse_time(i[1].finished_at))[1]
    host_tuple = tuple(hosts)
    clean = all(h.verdict == "pass" for h in host_tuple) and not bad and bool(host_tuple)
    return Fleet(
        generated_at=now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        max_age_hours=max_age_hours,
        verdict="pass" if clean else "fail",
        hosts=host_tuple,
        controls=_control_summaries(host_tuple, newest),
        bad_files=tuple(bad),
    )


def _history_dict(state: HistoryState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "intact": state.intact,
        "entries": state.entries,
        "head_hash": state.head_hash,
        "problems": list(state.problems),
        "notes": list(state.notes),
    }


def to_dict(fleet: Fleet) -> dict[str, Any]:
    """The JSON form (validated by auditor/data/fleet.schema.json)."""
    return {
        "schema": FLEET_SCHEMA,
        "generated_at": fleet.generated_at,
        "max_age_hours": fleet.max_age_hours,
        "verdict": fleet.verdict,
        "hosts": [
            {
                "name": h.name,
                "verdict": h.verdict,
                "report_verdict": h.report_verdict,
                "file": h.file,
                "finished_at": h.finished_at,
                "age_hours": h.age_hours,
                "stale": h.stale,
                "counts": dict(h.counts),
                "failing": list(h.failing),
                "errors": list(h.errors),
                "auditor_run": h.auditor_run,
                "history": _history_dict(h.history),
            }
            for h in fleet.hosts
        ],
        "controls": [
            {
                "id": c.id,
                "title": c.title,
                "severity": c.severity,
                "failing_hosts": list(c.failing_hosts),
                "error_hosts": list(c.error_hosts),
            }
            for c in fleet.controls
        ],
        "invalid_files": [
            {"host": b.host, "file": b.file, "reason": b.reason} for b in fleet.bad_files
        ],
    }

"""The evidence of a review period, collected from report histories.

For every host seen in the histories: each night of the period (a UTC date) with the reports
finished that night, the status of every control that night, and what is wrong with it. A
night without a report is a gap, a report the history's verification flags is tampered, and
both are findings like a failed control: evidence that is missing or altered proves nothing.
Every history's verification result, head and signatures come along, and so do the waivers
that were in force. Pure: the same histories and period give the same Evidence.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from auditor import safeio
from auditor.errors import InputError
from auditor.report import history, sshsig
from auditor.report.history import SIGNATURES_DIR, Entry, Problem
from auditor.report.load import from_dict
from auditor.report.model import Report
from auditor.report.validate import validate
from auditor.report.view import effective_status

# worst first: a night's status is the worst of its reports and controls
NIGHT_ORDER = ("tampered", "missing", "fail", "error", "waived", "pass", "not_applicable")
MAX_PERIOD_DAYS = 1096


@dataclass(frozen=True)
class HistoryCheck:
    """One history's `verify` result, as the pack records it."""

    directory: str
    label: str  # the history's folder in the pack: history-1, history-2, …
    hosts: tuple[str, ...]
    entries: int
    head_seq: int | None
    head_hash: str | None
    problems: tuple[Problem, ...]
    notes: tuple[str, ...]
    signatures: tuple[str, ...]  # signature file names (copied into the pack)
    chain: bytes  # chain.jsonl as found
    signature_bytes: tuple[bytes, ...]  # the signature files' bytes, as `signatures`

    @property
    def intact(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class PeriodReport:
    """A history entry of the period, with its exact bytes; report None when not trusted."""

    host: str
    night: str
    seq: int
    history: str
    data: bytes
    report: Report | None
    problem: str | None  # why it is not trusted

    @property
    def file(self) -> str:
        return f"reports/{self.host}/{self.night}-{self.history}-{self.seq:06d}.json"


@dataclass(frozen=True)
class Night:
    night: str
    status: str  # one of NIGHT_ORDER
    reports: tuple[str, ...]  # pack files of the night's reports
    controls: Mapping[str, str]  # control id -> its worst status that night


@dataclass(frozen=True)
class BundleSigner:
    """Which key signed the bundle lock a host's audits ran with, over which nights."""

    status: str  # the reports' integrity.signature.status; "not recorded" without one
    fingerprint: str | None
    principal: str | None
    reason: str
    nights: tuple[str, ...]


@dataclass(frozen=True)
class HostPeriod:
    host: str
    nights: tuple[Night, ...]
    signers: tuple[BundleSigner, ...] = ()  # one per distinct signer seen in the period


@dataclass(frozen=True)
class WaiverInForce:
    host: str
    control_id: str
    justification: str
    approved_by: str | None
    expires: str
    nights: tuple[str, ...]


@dataclass(frozen=True)
class Finding:
    kind: str  # tampered | history | missing | fail | error
    host: str | None
    control_id: str | None
    nights: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Evidence:
    since: str
    until: str
    histories: tuple[HistoryCheck, ...]
    reports: tuple[PeriodReport, ...]
    hosts: tuple[HostPeriod, ...]
    waivers: tuple[WaiverInForce, ...]
    findings: tuple[Finding, ...]

    @property
    def nights(self) -> tuple[str, ...]:
        return nights_between(self.since, self.until)

    @property
    def verdict(self) -> str:
        kinds = {f.kind for f in self.findings}
        if kinds & {"tampered", "history", "fail"}:
            return "fail"
        if kinds or not self.hosts:
            return "incomplete"
        return "pass"


def parse_day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{what} {text!r} is not a date (YYYY-MM-DD)") from None


def nights_between(since: str, until: str) -> tuple[str, ...]:
    first, last = date.fromisoformat(since), date.fromisoformat(until)
    return tuple((first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1))


def night_of(finished_at: str) -> str:
    """The UTC date a report finished on: the night it is evidence for."""
    moment = datetime.fromisoformat(finished_at.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date().isoformat()


def _trusted(data: bytes, problems: list[str]) -> tuple[Report | None, str | None]:
    if problems:
        return None, "; ".join(problems)
    try:
        parsed = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"not JSON: {exc}"
    errors = validate(parsed)
    if errors:
        return None, f"not a valid offgrid report: {errors[0]}"
    return from_dict(parsed), None


def _read_bytes(path: Path) -> bytes:
    return safeio.read_bytes(path, safeio.REPORT_LIMIT, follow=False)


def _read_report(directory: Path, entry: Entry) -> bytes:
    """The stored report's bytes; missing or unreadable: empty (verify names the problem)."""
    try:
        return _read_bytes(history.report_path(directory, entry))
    except InputError:
        return b""


def _signature_problems(
    directory: Path, entries: tuple[Entry, ...], allowed_signers: Path | None
) -> tuple[list[Problem], list[str]]:
    if allowed_signers is None:
        present = sorted((directory / SIGNATURES_DIR).glob("*.sig"))
        note = "SSH signatures not verified (no --allowed-signers)" if present else ""
        return [], [note] if note else []
    problems: list[Problem] = []
    notes: list[str] = []
    for item in sshsig.check_signatures(directory, entries, allowed_signers):
        if isinstance(item, Problem):
            problems.append(item)
        else:
            notes.append(item)
    return problems, notes


def check_history(
    directory: Path, label: str, allowed_signers: Path | None
) -> tuple[HistoryCheck, dict[int, list[str]], tuple[Entry, ...]]:
    """The history's verification, the problems per entry, and its entries."""
    result = history.verify(directory)
    sig_problems, sig_notes = _signature_problems(directory, result.entries, allowed_signers)
    problems = [*result.problems, *sig_problems]
    by_seq: dict[int, list[str]] = {}
    for problem in result.problems:  # a signature problem is the history's, not the report's
        if problem.seq is not None:
            by_seq.setdefault(problem.seq, []).append(problem.message)
    head = result.head
    signature_files = sorted((directory / SIGNATURES_DIR).glob("*.sig"))
    check = HistoryCheck(
        directory=str(directory),
        label=label,
        hosts=tuple(sorted({e.host for e in result.entries})),
        entries=len(result.entries),
        head_seq=head.seq if head else None,
        head_hash=head.entry_hash if head else None,
        problems=tuple(problems),
        notes=(*result.notes, *sig_notes),
        signatures=tuple(p.name for p in signature_files),
        chain=b"".join(history.read_lines(directory)),
        signature_bytes=tuple(_read_bytes(p) for p in signature_files),
    )
    return check, by_seq, result.entries


def _period_reports(
    directory: Path,
    check: HistoryCheck,
    by_seq: Mapping[int, list[str]],
    entries: Iterable[Entry],
    nights: frozenset[str],
) -> list[PeriodReport]:
    found = []
    for entry in entries:
        try:
            night = night_of(entry.finished_at)
        except ValueError:
            continue  # an entry whose time is unreadable is already a verification problem
        if night not in nights:
            continue
        data = _read_report(directory, entry)
        report, problem = _trusted(data, by_seq.get(entry.seq, []))
        found.append(PeriodReport(entry.host, night, entry.seq, check.label, data, report, problem))
    return found


def _controls_of(reports: list[PeriodReport]) -> dict[str, str]:
    statuses: dict[str, str] = {}
    for item in reports:
        assert item.report is not None
        for control in item.report.controls:
            status = effective_status(control)
            previous = statuses.get(control.id)
            if previous is None or NIGHT_ORDER.index(status) < NIGHT_ORDER.index(previous):
                statuses[control.id] = status
    return statuses


def _night(night: str, reports: list[PeriodReport]) -> Night:
    files = tuple(r.file for r in reports)
    trusted = [r for r in reports if r.report is not None]
    if not trusted:
        return Night(night, "tampered" if reports else "missing", files, {})
    controls = _controls_of(trusted)
    statuses = [*controls.values(), *(["tampered"] if len(trusted) < len(reports) else [])]
    incomplete = any(r.report is not None and r.report.incomplete for r in trusted)
    statuses += ["error"] if incomplete else []
    status = min(statuses, key=NIGHT_ORDER.index) if statuses else "error"
    return Night(night, status, files, controls)


def _signer_key(report: Report) -> tuple[str, str | None, str | None, str]:
    integrity = report.integrity
    if integrity is None:
        return "no lock", None, None, "the audit ran without a lock file"
    signature = integrity.signature
    if signature is None:
        return "not recorded", None, None, "the report does not record the lock's signer"
    return signature.status, signature.fingerprint, signature.principal, signature.reason


def _signers(reports: Iterable[PeriodReport]) -> tuple[BundleSigner, ...]:
    """The distinct signers of the trusted reports' locks, in the order first seen."""
    seen: dict[tuple[str, str | None, str | None], tuple[str, list[str]]] = {}
    for item in reports:
        if item.report is None:
            continue
        status, fingerprint, principal, reason = _signer_key(item.report)
        _reason, nights = seen.setdefault((status, fingerprint, principal), (reason, []))
        nights.append(item.night)
    return tuple(
        BundleSigner(status, fingerprint, principal, reason, tuple(sorted(set(nights))))
        for (status, fingerprint, principal), (reason, nights) in seen.items()
    )


def _hosts(
    reports: list[PeriodReport], names: Iterable[str], nights: tuple[str, ...]
) -> tuple[HostPeriod, ...]:
    periods = []
    for host in sorted(set(names)):
        mine = [r for r in reports if r.host == host]
        periods.append(
            HostPeriod(
                host,
                tuple(_night(n, [r for r in mine if r.night == n]) for n in nights),
                _signers(mine),
            )
        )
    return tuple(periods)


def _waivers(reports: Iterable[PeriodReport]) -> tuple[WaiverInForce, ...]:
    nights: dict[tuple[str, str, str, str | None, str], list[str]] = {}
    for item in reports:
        if item.report is None:
            continue
        for control in item.report.controls:
            waiver = control.waiver
            if waiver is None or effective_status(control) != "waived":
                continue
            key = (item.host, control.id, waiver.justification, waiver.approved_by, waiver.expires)
            nights.setdefault(key, []).append(item.night)
    return tuple(
        WaiverInForce(host, cid, why, who, expires, tuple(sorted(set(dates))))
        for (host, cid, why, who, expires), dates in sorted(nights.items(), key=str)
    )


def _span(nights: Iterable[str]) -> str:
    dates = sorted(set(nights))
    if len(dates) <= 3:
        return ", ".join(dates)
    return f"{len(dates)} nights, {dates[0]} … {dates[-1]}"


def _host_findings(host: HostPeriod, titles: Mapping[str, str]) -> list[Finding]:
    found: list[Finding] = []
    gaps = tuple(n.night for n in host.nights if n.status == "missing")
    if gaps:  # (a tampered night is a finding of its report's)
        found.append(Finding("missing", host.host, None, gaps, f"no report: {_span(gaps)}"))
    unread = tuple(
        n.night
        for n in host.nights
        if n.status == "error" and not {"fail", "error"} & set(n.controls.values())
    )
    if unread:  # an audit that could not read everything proves no pass
        text = f"the audit could not read everything (see the report): {_span(unread)}"
        found.append(Finding("error", host.host, None, unread, text))
    by_control: dict[tuple[str, str], list[str]] = {}
    for night in host.nights:
        for cid, status in night.controls.items():
            if status in ("fail", "error"):
                by_control.setdefault((status, cid), []).append(night.night)
    for (status, cid), failed in sorted(by_control.items()):
        verb = "failed" if status == "fail" else "could not be evaluated"
        text = f"{cid} {titles.get(cid, '')} {verb}: {_span(failed)}".replace("  ", " ")
        found.append(Finding(status, host.host, cid, tuple(failed), text))
    return found


def _findings(
    histories: Iterable[HistoryCheck],
    hosts: Iterable[HostPeriod],
    reports: Iterable[PeriodReport],
    titles: Mapping[str, str],
) -> tuple[Finding, ...]:
    found: list[Finding] = []
    reported = {(r.history, r.seq) for r in reports if r.problem is not None}
    for check in histories:  # what a tampered report of the period does not already say
        found += [
            Finding("history", None, None, (), f"{check.label}: {p.describe()}")
            for p in check.problems
            if (check.label, p.seq) not in reported
        ]
    for item in reports:
        if item.problem is not None:
            text = f"entry {item.seq} of {item.history} ({item.night}): {item.problem}"
            found.append(Finding("tampered", item.host, None, (item.night,), text))
    for host in hosts:
        found += _host_findings(host, titles)
    order = ("tampered", "history", "fail", "missing", "error")
    return tuple(sorted(found, key=lambda f: (order.index(f.kind), f.host or "", f.text)))


def collect(
    directories: Iterable[Path],
    since: str,
    until: str,
    titles: Mapping[str, str],
    allowed_signers: Path | None = None,
) -> Evidence:
    """The evidence of the nights `since`..`until` (inclusive, UTC dates) in the histories."""
    first, last = parse_day(since, "--since"), parse_day(until, "--until")
    if last < first:
        raise InputError(f"--until {until} is before --since {since}")
    if (last - first).days >= MAX_PERIOD_DAYS:
        raise InputError(f"a period of at most {MAX_PERIOD_DAYS} nights, not {since}..{until}")
    nights = nights_between(first.isoformat(), last.isoformat())
    checks: list[HistoryCheck] = []
    reports: list[PeriodReport] = []
    names: set[str] = set()
    for index, directory in enumerate(directories, start=1):
        check, by_seq, entries = check_history(directory, f"history-{index}", allowed_signers)
        checks.append(check)
        names.update(check.hosts)
        reports += _period_reports(directory, check, by_seq, entries, frozenset(nights))
    reports.sort(key=lambda r: (r.host, r.night, r.history, r.seq))
    hosts = _hosts(reports, names, nights)
    return Evidence(
        since=first.isoformat(),
        until=last.isoformat(),
        histories=tuple(checks),
        reports=tuple(reports),
        hosts=hosts,
        waivers=_waivers(reports),
        findings=_findings(checks, hosts, reports, titles),
    )

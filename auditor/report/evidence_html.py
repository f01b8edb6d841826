"""index.html of an evidence pack: what a reviewer reads first, with no tool at hand.

Verdict of the period, then the findings (failures first, each with its remediation), a
calendar strip per host (one cell per night, its status as a letter too, so it reads in
black and white), the waivers in force, each history's verification, the control x
framework matrix and the list of reports. Every decision is made here; the template only
loops and prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from auditor.checks.interface import Control
from auditor.report.evidence import BundleSigner, Evidence, HostPeriod, WaiverInForce
from auditor.report.evidence_files import (
    FRAMEWORKS,
    STATUS_WORDS,
    matrix_rows,
    remediation_for,
)
from auditor.report.templates import environment
from auditor.report.view import FRAMEWORK_LABELS

LETTERS = {
    "pass": "P",
    "fail": "F",
    "waived": "W",
    "error": "E",
    "not_applicable": "-",
    "missing": "?",
    "tampered": "T",
}
KIND_LABELS = {
    "tampered": "TAMPERED",
    "history": "HISTORY",
    "fail": "FAIL",
    "missing": "NO REPORT",
    "error": "ERROR",
}
VERDICTS = {
    "pass": ("PASS", "Every host has an intact report for every night, and every control passed."),
    "fail": ("FAIL", "A control failed, or evidence was altered: see the findings."),
    "incomplete": ("INCOMPLETE", "Nights without a report or controls that could not be "
                   "evaluated: compliance over the period is not proven."),
}  # fmt: skip


@dataclass(frozen=True)
class Cell:
    night: str
    status: str
    letter: str
    title: str


@dataclass(frozen=True)
class Strip:
    host: str
    cells: tuple[Cell, ...]
    summary: str
    signers: tuple[tuple[str, str], ...] = ()  # (who signed the bundle lock, over which nights)


@dataclass(frozen=True)
class FindingRow:
    kind: str
    label: str
    host: str
    control: str
    text: str
    remediation: str


@dataclass(frozen=True)
class EvidenceView:
    title: str
    since: str
    until: str
    verdict_kind: str
    verdict_headline: str
    verdict_detail: str
    cards: tuple[tuple[str, str, int], ...]
    findings: tuple[FindingRow, ...]
    strips: tuple[Strip, ...]
    legend: tuple[tuple[str, str, str], ...]
    waivers: tuple[tuple[str, ...], ...]
    histories: tuple[tuple[str, ...], ...]
    matrix_header: tuple[str, ...]
    matrix: tuple[tuple[str, ...], ...]
    matrix_status: tuple[str, ...]
    reports: tuple[tuple[str, str, str], ...]
    tool_version: str


def _strip(host_name: str, nights: tuple[tuple[str, str], ...]) -> Strip:
    cells = tuple(Cell(n, s, LETTERS[s], f"{n}: {STATUS_WORDS[s]}") for n, s in nights)
    counts: dict[str, int] = {}
    for _, status in nights:
        counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{counts[s]} {STATUS_WORDS[s]}" for s in LETTERS if counts.get(s))
    return Strip(host_name, cells, summary)


def _host_strip(host: HostPeriod) -> Strip:
    strip = _strip(host.host, tuple((n.night, n.status) for n in host.nights))
    return replace(strip, signers=_signers(host))


def signer_text(signer: BundleSigner) -> str:
    """Who signed the host's bundle lock, said plainly."""
    if signer.status == "verified":
        return f"signed by {signer.principal} (key {signer.fingerprint}), verified"
    if signer.status == "unsigned":
        return "UNSIGNED: the bundle lock carried no signature"
    if signer.status == "unverifiable":
        return f"UNVERIFIABLE: key {signer.fingerprint or 'unknown'}; {signer.reason}"
    return f"{signer.status.upper()}: {signer.reason}"


def _signers(host: HostPeriod) -> tuple[tuple[str, str], ...]:
    return tuple((signer_text(s), _span(s.nights)) for s in host.signers)


def _span(nights: tuple[str, ...]) -> str:
    if len(nights) <= 2:
        return ", ".join(nights)
    return f"{len(nights)} nights, {nights[0]} … {nights[-1]}"


def _waiver_row(waiver: WaiverInForce) -> tuple[str, ...]:
    first, last = waiver.nights[0], waiver.nights[-1]
    used = first if len(waiver.nights) == 1 else f"{len(waiver.nights)} nights, {first} … {last}"
    approver = waiver.approved_by or "not recorded"
    return (waiver.host, waiver.control_id, waiver.justification, approver, waiver.expires, used)


def _histories(evidence: Evidence) -> tuple[tuple[str, ...], ...]:
    return tuple(
        (
            h.label,
            h.directory,
            ", ".join(h.hosts) or "none",
            str(h.entries),
            f"{h.head_seq} {h.head_hash}" if h.head_hash else "empty",
            "intact" if h.intact else "TAMPERED: " + "; ".join(p.describe() for p in h.problems),
            "; ".join(h.notes) or "",
            ", ".join(h.signatures) or "none",
        )
        for h in evidence.histories
    )


def _matrix(
    evidence: Evidence, catalog: Mapping[str, Control]
) -> tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]:
    rows = matrix_rows(evidence, catalog)
    cells = tuple(
        (
            f"{r['id']} {r['title']}",
            *("; ".join(r["references"][f]) for f in FRAMEWORKS),
            STATUS_WORDS[r["status"]],
            ", ".join(f"{n} {STATUS_WORDS[s]}" for s, n in r["nights"].items() if n),
        )
        for r in rows
    )
    return cells, tuple(r["status"] for r in rows)


def build_view(
    evidence: Evidence, catalog: Mapping[str, Control], tool_version: str
) -> EvidenceView:
    headline, detail = VERDICTS[evidence.verdict]
    kinds = [f.kind for f in evidence.findings]
    matrix, matrix_status = _matrix(evidence, catalog)
    return EvidenceView(
        title=f"offgrid evidence pack {evidence.since} to {evidence.until}",
        since=evidence.since,
        until=evidence.until,
        verdict_kind=evidence.verdict,
        verdict_headline=headline,
        verdict_detail=detail,
        cards=(
            ("total", "Hosts", len(evidence.hosts)),
            ("total", "Nights", len(evidence.nights)),
            ("pass", "Reports", len(evidence.reports)),
            ("fail", "Findings", len(kinds)),
            ("waived", "Waivers in force", len(evidence.waivers)),
        ),
        findings=tuple(
            FindingRow(
                f.kind,
                KIND_LABELS[f.kind],
                f.host or "",
                f.control_id or "",
                f.text,
                remediation_for(f, catalog),
            )
            for f in evidence.findings
        ),
        strips=tuple(
            replace(
                _strip(h.host, tuple((n.night, n.status) for n in h.nights)), signers=_signers(h)
            )
            for h in evidence.hosts
        ),
        legend=tuple((s, LETTERS[s], STATUS_WORDS[s]) for s in LETTERS),
        waivers=tuple(_waiver_row(w) for w in evidence.waivers),
        histories=_histories(evidence),
        matrix_header=(
            "Control",
            *(FRAMEWORK_LABELS[f] for f in FRAMEWORKS),
            "Period",
            "Host-nights",
        ),
        matrix=matrix,
        matrix_status=matrix_status,
        reports=tuple(
            (r.file, r.host, "not trusted: " + r.problem if r.problem else "intact")
            for r in evidence.reports
            if r.data
        ),
        tool_version=tool_version,
    )


def render_index(evidence: Evidence, catalog: Mapping[str, Control], tool_version: str) -> str:
    view = build_view(evidence, catalog, tool_version)
    return environment().get_template("evidence.html.j2").render(e=view)

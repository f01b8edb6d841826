"""The files of an evidence pack, rendered from Evidence: pure, every byte determined by it.

index.html                       what a reviewer reads first, without any tool
evidence.json                    the same content for machines (period, verdict, nights,
                                 findings, waivers, histories, matrix)
matrix.csv                       control x framework, with each control's nights by status
assessment-results.oscal.json    one OSCAL 1.1.2 assessment-results for the period
reports/<host>/<night>-<history>-<seq>.json   every report of the period, bytes as stored
histories/<history>/verify.json  the history's verification result and head
histories/<history>/chain.jsonl  and signatures/*.sig, as found
MANIFEST.sha256                  sha256 of every other file (`sha256sum -c MANIFEST.sha256`)
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import Mapping
from typing import Any

from auditor.checks.interface import Control
from auditor.report import oscal
from auditor.report.evidence import (
    NIGHT_ORDER,
    BundleSigner,
    Evidence,
    Finding,
    HistoryCheck,
    Night,
)
from auditor.report.view import FRAMEWORK_LABELS

MANIFEST = "MANIFEST.sha256"
FRAMEWORKS = ("soc2", "gdpr", "hipaa", "nist", "iso27001")
STATUS_WORDS = {
    "pass": "pass",
    "fail": "fail",
    "waived": "waived",
    "error": "error",
    "not_applicable": "n/a",
    "missing": "no report",
    "tampered": "tampered",
}
Json = dict[str, Any]


def control_counts(evidence: Evidence, control_id: str) -> dict[str, int]:
    """How many host-nights the control had each status (missing/tampered nights count too)."""
    counts = dict.fromkeys(NIGHT_ORDER, 0)
    for host in evidence.hosts:
        for night in host.nights:
            if night.status in ("missing", "tampered") and not night.controls:
                counts[night.status] += 1
            else:  # a report of that night without this control is no evidence for it
                counts[night.controls.get(control_id, "missing")] += 1
    return counts


def period_status(counts: Mapping[str, int]) -> str:
    """The control's status over the period: its worst night."""
    return next((status for status in NIGHT_ORDER if counts.get(status)), "missing")


def matrix_rows(evidence: Evidence, catalog: Mapping[str, Control]) -> list[Json]:
    rows = []
    for control in catalog.values():
        counts = control_counts(evidence, control.id)
        rows.append(
            {
                "id": control.id,
                "title": control.title,
                "severity": control.severity.value,
                "references": {f: list(control.references.get(f, ())) for f in FRAMEWORKS},
                "nights": counts,
                "status": period_status(counts),
            }
        )
    return rows


def matrix_csv(rows: list[Json]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["control", "title", "severity", *(FRAMEWORK_LABELS[f] for f in FRAMEWORKS),
         "period status", *(f"nights {STATUS_WORDS[s]}" for s in NIGHT_ORDER)]
    )  # fmt: skip
    for row in rows:
        refs = ["; ".join(row["references"][f]) for f in FRAMEWORKS]
        counts = [row["nights"][s] for s in NIGHT_ORDER]
        writer.writerow([row["id"], row["title"], row["severity"], *refs, row["status"], *counts])
    return out.getvalue().encode("utf-8")


def remediation_for(finding: Finding, catalog: Mapping[str, Control]) -> str:
    if finding.control_id is not None and finding.control_id in catalog:
        return catalog[finding.control_id].remediation
    if finding.kind == "missing":
        return (
            "Find why the nightly audit did not run or was not kept (systemctl status "
            "offgrid-audit.timer, the journal); a night without a report proves nothing."
        )
    return (
        "Treat the evidence as altered: compare with an independent copy, find who could "
        "write the history, and anchor the head hash outside the workstation."
    )


def _finding_json(finding: Finding, catalog: Mapping[str, Control]) -> Json:
    return {
        "kind": finding.kind,
        "host": finding.host,
        "control": finding.control_id,
        "nights": list(finding.nights),
        "text": finding.text,
        "remediation": remediation_for(finding, catalog),
    }


def evidence_json(evidence: Evidence, catalog: Mapping[str, Control]) -> Json:
    return {
        "schema": "offgrid-evidence/1",
        "period": {"since": evidence.since, "until": evidence.until},
        "verdict": evidence.verdict,
        "findings": [_finding_json(f, catalog) for f in evidence.findings],
        "waivers": [
            {
                "host": w.host,
                "control": w.control_id,
                "justification": w.justification,
                "approved_by": w.approved_by,
                "expires": w.expires,
                "nights": list(w.nights),
            }
            for w in evidence.waivers
        ],
        "hosts": [
            {
                "host": h.host,
                "bundle_signers": [_signer_json(signer) for signer in h.signers],
                "nights": [_night_json(n) for n in h.nights],
            }
            for h in evidence.hosts
        ],
        "histories": [_history_json(h) for h in evidence.histories],
        "matrix": matrix_rows(evidence, catalog),
    }


def _signer_json(signer: BundleSigner) -> Json:
    return {
        "status": signer.status,
        "fingerprint": signer.fingerprint,
        "principal": signer.principal,
        "reason": signer.reason,
        "nights": list(signer.nights),
    }


def _night_json(night: Night) -> Json:
    return {
        "night": night.night,
        "status": night.status,
        "reports": list(night.reports),
        "controls": dict(sorted(night.controls.items())),
    }


def _history_json(check: HistoryCheck) -> Json:
    return {
        "history": check.label,
        "directory": check.directory,
        "hosts": list(check.hosts),
        "entries": check.entries,
        "head": {"seq": check.head_seq, "entry_hash": check.head_hash},
        "intact": check.intact,
        "problems": [p.describe() for p in check.problems],
        "notes": list(check.notes),
        "signatures": list(check.signatures),
    }


def _dump(data: Any, *, compact: bool = False) -> bytes:
    """JSON bytes; compact for the large OSCAL document (the C encoder, one line)."""
    if compact:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    else:
        text = json.dumps(data, indent=2, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


# ---- OSCAL -------------------------------------------------------------------------------


def _coverage_result(evidence: Evidence, seed: str) -> Json:
    """The period's own result: a finding per gap, tampered report and history problem."""
    findings = [
        {
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}:finding:{index}")),
            "title": f"{f.kind}: {f.host or 'history'}",
            "description": f.text,
            "props": [oscal.prop("offgrid-status", f.kind)],
            "target": {
                "type": "objective-id",
                "target-id": "offgrid-nightly-evidence",
                "status": {"state": "not-satisfied", "reason": "other", "remarks": f.text},
            },
        }
        for index, f in enumerate(evidence.findings)
        if f.kind in ("missing", "tampered", "history")
    ]
    result: Json = {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}:coverage")),
        "title": f"Evidence coverage {evidence.since} to {evidence.until}",
        "description": "Whether every night of the period has an intact report for every "
        "host: a night without one, an altered report or a damaged history is a finding.",
        "start": f"{evidence.since}T00:00:00+00:00",
        "end": f"{evidence.until}T23:59:59+00:00",
        "reviewed-controls": {"control-selections": [{"include-all": {}}]},
    }
    if findings:
        result["findings"] = findings
    return result


def oscal_document(evidence: Evidence, summary: bytes, tool_version: str) -> Json:
    seed = hashlib.sha256(summary).hexdigest()
    results = [oscal.report_result(r.report) for r in evidence.reports if r.report is not None]
    return oscal.document(
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}:document")),
        f"offgrid evidence {evidence.since} to {evidence.until}",
        f"{evidence.until}T23:59:59+00:00",
        tool_version,
        [*results, _coverage_result(evidence, seed)],
    )


# ---- the whole pack ----------------------------------------------------------------------


def manifest(files: Mapping[str, bytes]) -> bytes:
    lines = [
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items())
    ]
    return "".join(lines).encode("ascii")


def pack_files(
    evidence: Evidence, catalog: Mapping[str, Control], tool_version: str, index_html: str
) -> dict[str, bytes]:
    """Every file of the pack but the manifest's signature, by path inside the pack."""
    summary = _dump(evidence_json(evidence, catalog))
    files: dict[str, bytes] = {
        "index.html": index_html.encode("utf-8"),
        "evidence.json": summary,
        "matrix.csv": matrix_csv(matrix_rows(evidence, catalog)),
        "assessment-results.oscal.json": _dump(
            oscal_document(evidence, summary, tool_version), compact=True
        ),
    }
    for item in evidence.reports:
        if item.data:
            files[item.file] = item.data
    for check in evidence.histories:
        base = f"histories/{check.label}"
        files[f"{base}/verify.json"] = _dump(_history_json(check))
        files[f"{base}/chain.jsonl"] = check.chain
        for name, data in zip(check.signatures, check.signature_bytes, strict=True):
            files[f"{base}/signatures/{name}"] = data
    files[MANIFEST] = manifest(files)
    return files

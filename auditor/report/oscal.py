"""OSCAL 1.1 assessment-results JSON, for GRC tools that ingest NIST's format.

One result per report: an observation per control (method TEST, the host as
subject, the evidence, when it was collected) and a finding per control whose
target is the control's objective, satisfied or not. Every uuid is derived from
the report's content (uuid5), so rendering the same report twice gives the same
document and a diff between two renders shows only what changed.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from auditor.fsutil import dumps_json
from auditor.report.escape import escape_markdown
from auditor.report.model import Report, to_dict
from auditor.verdicts import ControlResult, effective_status

OSCAL_VERSION = "1.1.2"
# Namespace for offgrid's own property names (OSCAL reserves names without "ns").
PROP_NS = "urn:offgrid:oscal"
_UUID_NAMESPACE = uuid.UUID("8f1140ec-0b8e-4066-94bb-a088d50fe81d")

Json = dict[str, Any]


class _Ids:
    """Deterministic uuids: the same report and the same part give the same uuid."""

    def __init__(self, report: Report) -> None:
        canonical = json.dumps(to_dict(report), sort_keys=True, separators=(",", ":"))
        self._seed = hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def __call__(self, *parts: str) -> str:
        return str(uuid.uuid5(_UUID_NAMESPACE, ":".join((self._seed, *parts))))


def _prop(name: str, value: str) -> Json:
    return {"name": name, "ns": PROP_NS, "value": value}


def _host_item(report: Report, ids: _Ids) -> Json:
    host = report.host
    return {
        "uuid": ids("host"),
        "description": f"The workstation {host.hostname} ({host.os}, kernel {host.kernel}, "
        f"{host.machine}) as audited by offgrid.",
        "props": [
            {"name": "asset-id", "value": host.hostname},
            {"name": "os-name", "value": host.os or "unknown"},
        ],
    }


def _observation(control: ControlResult, report: Report, ids: _Ids) -> Json:
    observation: Json = {
        "uuid": ids("observation", control.id),
        "title": f"{control.id}: {control.title}",
        "description": escape_markdown(control.summary or control.title),
        "props": [_prop("offgrid-status", control.status.value)],
        "methods": ["TEST"],
        "subjects": [
            {"subject-uuid": ids("host"), "type": "inventory-item", "title": report.host.hostname}
        ],
        "collected": report.finished_at,
    }
    evidence = [
        {"description": escape_markdown(f"{item.label}: {item.value}")} for item in control.evidence
    ]
    if evidence:  # OSCAL arrays may not be empty
        observation["relevant-evidence"] = evidence
    return observation


def _state(control: ControlResult) -> Json:
    status = effective_status(control)
    if status == "pass":
        return {"state": "satisfied", "reason": "pass"}
    if status == "not_applicable":
        return {"state": "satisfied", "reason": "other", "remarks": "Not applicable here."}
    if status == "error":
        return {
            "state": "not-satisfied",
            "reason": "other",
            "remarks": "Could not be evaluated; not shown to be satisfied.",
        }
    return {"state": "not-satisfied", "reason": "fail"}


def _finding(control: ControlResult, ids: _Ids) -> Json:
    status = effective_status(control)
    finding: Json = {
        "uuid": ids("finding", control.id),
        "title": f"{control.id}: {control.title}",
        "description": escape_markdown(control.rationale or control.title),
        "props": [
            _prop("offgrid-status", status),
            _prop("severity", control.severity),
        ],
        "target": {
            "type": "objective-id",
            "target-id": control.id,
            "status": _state(control),
        },
        "related-observations": [{"observation-uuid": ids("observation", control.id)}],
    }
    if control.waiver is not None:
        waiver = control.waiver
        finding["remarks"] = escape_markdown(
            f"Waived until {waiver.expires}: {waiver.justification}"
        )
    return finding


def _reviewed_controls(report: Report) -> Json:
    if not report.controls:
        return {"control-selections": [{"include-all": {}}]}
    selected = [{"control-id": control.id} for control in report.controls]
    return {"control-selections": [{"include-controls": selected}]}


def _result(report: Report, ids: _Ids) -> Json:
    result: Json = {
        "uuid": ids("result"),
        "title": f"offgrid audit of {report.host.hostname}",
        "description": "Automated privacy and configuration audit of an offline AI "
        "coding workstation.",
        "start": report.started_at,
        "end": report.finished_at,
        "local-definitions": {"inventory-items": [_host_item(report, ids)]},
        "reviewed-controls": _reviewed_controls(report),
    }
    if report.controls:
        result["observations"] = [_observation(c, report, ids) for c in report.controls]
        result["findings"] = [_finding(c, ids) for c in report.controls]
    if report.incomplete:
        result["remarks"] = escape_markdown("Not read: " + "; ".join(report.incomplete))
    return result


def assessment_results(report: Report) -> Json:
    ids = _Ids(report)
    catalog = ids("catalog")
    return {
        "assessment-results": {
            "uuid": ids("document"),
            "metadata": {
                "title": f"offgrid assessment results: {report.host.hostname}",
                "last-modified": report.finished_at,
                "version": report.finished_at,
                "oscal-version": OSCAL_VERSION,
                "props": [_prop("tool-version", report.tool_version)],
            },
            # No separate assessment plan exists: the plan is offgrid's control catalog.
            "import-ap": {"href": f"#{catalog}"},
            "results": [_result(report, ids)],
            "back-matter": {
                "resources": [
                    {
                        "uuid": catalog,
                        "title": "offgrid control catalog",
                        "description": f"The controls of offgrid {report.tool_version} "
                        "(auditor/data/controls.toml): ids, rationale, remediation and "
                        "framework references.",
                    }
                ]
            },
        }
    }


def render(report: Report) -> str:
    return dumps_json(assessment_results(report)) + "\n"

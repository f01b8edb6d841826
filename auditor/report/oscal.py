"""OSCAL 1.1 assessment-results JSON, for GRC tools that ingest NIST's format.

One result per report: an observation per control (method TEST, the host as
subject, the evidence, when it was collected), a finding per applicable control whose
target is the control's objective, satisfied or not, with its framework references as
props, and a risk carrying the remediation for each control that did not pass (waived:
deviation-approved). A not-applicable control is excluded from the reviewed controls and
has no finding: it was not assessed. `import-ap` points at the control catalog, carried in
back-matter. Checked against NIST's 1.1.2 schema and compliance-trestle. Every uuid is derived from
the report's content (uuid5), so rendering the same report twice gives the same
document and a diff between two renders shows only what changed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from importlib import resources
from typing import Any

from auditor.fsutil import dumps_json
from auditor.report.escape import escape_markdown
from auditor.report.model import Report, to_dict
from auditor.verdicts import ControlResult, Status, effective_status

OSCAL_VERSION = "1.1.2"
# Namespace for offgrid's own property names (OSCAL reserves names without "ns"). A URI, as
# OSCAL's metaschema and compliance-trestle's models require.
PROP_NS = "https://offgrid.invalid/ns/oscal"
_UUID_NAMESPACE = uuid.UUID("8f1140ec-0b8e-4066-94bb-a088d50fe81d")
CATALOG_FILE = "controls.toml"

Json = dict[str, Any]


class _Ids:
    """Deterministic uuids: the same report and the same part give the same uuid."""

    def __init__(self, report: Report) -> None:
        canonical = json.dumps(to_dict(report), sort_keys=True, separators=(",", ":"))
        self._seed = hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def __call__(self, *parts: str) -> str:
        return str(uuid.uuid5(_UUID_NAMESPACE, ":".join((self._seed, *parts))))


def prop(name: str, value: str, cls: str | None = None) -> Json:
    prop = {"name": name, "ns": PROP_NS, "value": value}
    if cls is not None:
        prop["class"] = cls
    return prop


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
        "props": [prop("offgrid-status", effective_status(control))],
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


def _state(status: str) -> Json:
    """The objective status of an applicable control. OSCAL knows only satisfied and
    not-satisfied: a control that could not be evaluated is not shown to be satisfied."""
    if status == "pass":
        return {"state": "satisfied", "reason": "pass"}
    if status == "error":
        return {
            "state": "not-satisfied",
            "reason": "other",
            "remarks": "Could not be evaluated; not shown to be satisfied.",
        }
    if status == "waived":
        return {"state": "not-satisfied", "reason": "fail", "remarks": "Failed; waived."}
    return {"state": "not-satisfied", "reason": "fail"}


def framework_props(control: ControlResult) -> list[Json]:
    """One prop per framework reference: class names the framework (soc2, gdpr, hipaa,
    nist, iso27001), value the requirement, e.g. class nist, value SC-7."""
    return [
        prop("framework-reference", ref, cls=framework)
        for framework, refs in sorted(control.references.items())
        for ref in refs
    ]


def _risk(control: ControlResult, ids: _Ids) -> Json:
    """A failed, waived or unevaluated control as an OSCAL risk carrying its remediation."""
    status = effective_status(control)
    risk: Json = {
        "uuid": ids("risk", control.id),
        "title": f"{control.id}: {control.title}",
        "description": escape_markdown(control.rationale or control.title),
        "statement": escape_markdown(control.summary or control.title),
        "props": [prop("severity", control.severity)],
        "status": "deviation-approved" if status == "waived" else "open",
        "remediations": [
            {
                "uuid": ids("remediation", control.id),
                "lifecycle": "recommendation",
                "title": f"Remediate {control.id}",
                "description": escape_markdown(control.remediation or "No remediation given."),
            }
        ],
        "related-observations": [{"observation-uuid": ids("observation", control.id)}],
    }
    return risk


def _finding(control: ControlResult, ids: _Ids) -> Json:
    status = effective_status(control)
    finding: Json = {
        "uuid": ids("finding", control.id),
        "title": f"{control.id}: {control.title}",
        "description": escape_markdown(control.rationale or control.title),
        "props": [
            prop("offgrid-status", status),
            prop("severity", control.severity),
            *framework_props(control),
        ],
        "target": {
            "type": "objective-id",
            "target-id": control.id,
            "status": _state(status),
        },
        "related-observations": [{"observation-uuid": ids("observation", control.id)}],
    }
    if status != "pass":
        finding["related-risks"] = [{"risk-uuid": ids("risk", control.id)}]
    if control.waiver is not None and status == "waived":
        waiver = control.waiver
        approver = f", approved by {waiver.approved_by}" if waiver.approved_by else ""
        finding["remarks"] = escape_markdown(
            f"Waived until {waiver.expires}{approver}: {waiver.justification}"
        )
    return finding


def _applicable(report: Report) -> tuple[list[ControlResult], list[ControlResult]]:
    controls = list(report.controls)
    applicable = [c for c in controls if c.status is not Status.NOT_APPLICABLE]
    return applicable, [c for c in controls if c.status is Status.NOT_APPLICABLE]


def _reviewed_controls(report: Report) -> Json:
    applicable, excluded = _applicable(report)
    if not report.controls:
        return {"control-selections": [{"include-all": {}}]}
    selection: Json = {}
    if applicable:
        selection["include-controls"] = [{"control-id": c.id} for c in applicable]
    else:
        selection["include-all"] = {}
    if excluded:
        # not applicable to this workstation (e.g. another engine's control): not assessed,
        # so neither satisfied nor not-satisfied
        selection["exclude-controls"] = [{"control-id": c.id} for c in excluded]
    return {"control-selections": [selection]}


def report_result(report: Report) -> Json:
    """The OSCAL result of one report: observations for every control, findings for the
    applicable ones, a risk with its remediation for each that did not pass."""
    ids = _Ids(report)
    applicable, _ = _applicable(report)
    result: Json = {
        "uuid": ids("result"),
        "title": f"offgrid audit of {report.host.hostname} at {report.finished_at}",
        "description": "Automated privacy and configuration audit of an offline AI "
        "coding workstation.",
        "start": report.started_at,
        "end": report.finished_at,
        "local-definitions": {"inventory-items": [_host_item(report, ids)]},
        "reviewed-controls": _reviewed_controls(report),
    }
    if report.controls:
        result["observations"] = [_observation(c, report, ids) for c in report.controls]
    risks = [_risk(c, ids) for c in applicable if effective_status(c) != "pass"]
    if risks:
        result["risks"] = risks
    if applicable:
        result["findings"] = [_finding(c, ids) for c in applicable]
    remarks = []
    if report.incomplete:
        remarks.append("Not read: " + "; ".join(report.incomplete))
    offload = report.benchmark.offload if report.benchmark else None
    if offload is not None:
        said = f"Warning: {offload.warning}" if offload.warning else offload.summary
        remarks.append(f"Benchmark GPU offload: {said}")
    if remarks:
        result["remarks"] = escape_markdown(". ".join(remarks))
    return result


def catalog_bytes() -> bytes:
    return resources.files("auditor.data").joinpath(CATALOG_FILE).read_bytes()


def plan_resource(resource_uuid: str, tool_version: str) -> Json:
    """The assessment plan `import-ap` points at: offgrid's control catalog, carried in the
    document itself (base64), so the reference resolves without anything else."""
    catalog = catalog_bytes()
    return {
        "uuid": resource_uuid,
        "title": "offgrid assessment plan: the control catalog",
        "description": f"The controls of offgrid {tool_version} ({CATALOG_FILE}): ids, checks' "
        "rationale, remediation and framework references. Every control is tested by "
        "automated inspection of the workstation (method TEST) at each nightly audit.",
        "props": [prop("catalog-sha256", hashlib.sha256(catalog).hexdigest())],
        "base64": {
            "filename": CATALOG_FILE,
            "media-type": "application/toml",
            "value": base64.b64encode(catalog).decode("ascii"),
        },
    }


def document(
    document_uuid: str, title: str, last_modified: str, tool_version: str, results: list[Json]
) -> Json:
    plan = str(uuid.uuid5(_UUID_NAMESPACE, f"plan:{tool_version}"))
    return {
        "assessment-results": {
            "uuid": document_uuid,
            "metadata": {
                "title": title,
                "last-modified": last_modified,
                "version": last_modified,
                "oscal-version": OSCAL_VERSION,
                "props": [prop("tool-version", tool_version)],
            },
            "import-ap": {
                "href": f"#{plan}",
                "remarks": "The plan is offgrid's control catalog, in back-matter.",
            },
            "results": results,
            "back-matter": {"resources": [plan_resource(plan, tool_version)]},
        }
    }


def assessment_results(report: Report) -> Json:
    ids = _Ids(report)
    return document(
        ids("document"),
        f"offgrid assessment results: {report.host.hostname}",
        report.finished_at,
        report.tool_version,
        [report_result(report)],
    )


def render(report: Report) -> str:
    return dumps_json(assessment_results(report)) + "\n"

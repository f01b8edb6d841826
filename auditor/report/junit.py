"""JUnit XML, so a CI system shows each control as a test: one suite per family.

fail -> <failure>, error -> <error>, not_applicable -> <skipped>; a failure with a
valid waiver is <skipped> carrying the waiver, so it neither breaks the build nor
disappears from view.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime

from auditor.report.escape import xml_text
from auditor.report.model import Report
from auditor.verdicts import ControlResult, Status, effective_status


def _evidence_text(control: ControlResult) -> str:
    lines = [f"{e.label}: {e.value}" for e in control.evidence]
    lines.append(f"remediation: {control.remediation}")
    return xml_text("\n".join(lines))


def _outcome(control: ControlResult) -> ET.Element | None:
    status = effective_status(control)
    if status == "waived" and control.waiver is not None:
        waiver = control.waiver
        message = f"waived until {waiver.expires}: {waiver.justification}"
        element = ET.Element("skipped", message=xml_text(message))
        element.text = xml_text(f"{control.summary}\n{message}")
        return element
    tag = {
        Status.FAIL.value: "failure",
        Status.ERROR.value: "error",
        Status.NOT_APPLICABLE.value: "skipped",
    }.get(status)
    if tag is None:
        return None
    element = ET.Element(tag, message=xml_text(control.summary))
    if tag != "skipped":
        element.set("type", control.severity)
        element.text = _evidence_text(control)
    return element


def _testcase(control: ControlResult) -> ET.Element:
    case = ET.Element(
        "testcase", name=xml_text(f"{control.id} {control.title}"), classname=control.family
    )
    case.set("time", "0")
    outcome = _outcome(control)
    if outcome is not None:
        case.append(outcome)
    elif control.evidence:
        ET.SubElement(case, "system-out").text = _evidence_text(control)
    return case


def _counts(cases: Iterable[ET.Element]) -> dict[str, int]:
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for case in cases:
        counts["tests"] += 1
        for tag, key in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
            if case.find(tag) is not None:
                counts[key] += 1
    return counts


def _set_counts(element: ET.Element, counts: dict[str, int]) -> None:
    for key, value in counts.items():
        element.set(key, str(value))


def junit_timestamp(text: str) -> str:
    """JUnit's schema wants a plain ISO 8601 time without an offset: give it in UTC."""
    moment = datetime.fromisoformat(text).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _families(report: Report) -> dict[str, list[ControlResult]]:
    families: dict[str, list[ControlResult]] = {}
    for control in report.controls:
        families.setdefault(control.family, []).append(control)
    return families


def _benchmark_suite(report: Report) -> ET.Element | None:
    """The benchmark's GPU offload as one test that passes, its warning in system-err: a
    model not fully on the GPU is a finding about the figures, not a failed control."""
    bench = report.benchmark
    if bench is None or bench.offload is None:
        return None
    suite = ET.Element("testsuite", name="benchmark")
    suite.set("timestamp", junit_timestamp(bench.started_at or report.started_at))
    suite.set("hostname", xml_text(report.host.hostname))
    case = ET.SubElement(
        suite, "testcase", name=xml_text(f"GPU offload of {bench.model}"), classname="benchmark"
    )
    case.set("time", "0")
    ET.SubElement(case, "system-out").text = xml_text(bench.offload.summary)
    if bench.offload.warning:
        ET.SubElement(case, "system-err").text = xml_text(f"warning: {bench.offload.warning}")
    _set_counts(suite, _counts([case]))
    return suite


def render(report: Report) -> str:
    root = ET.Element("testsuites", name="offgrid audit")
    all_cases: list[ET.Element] = []
    for family, controls in _families(report).items():
        suite = ET.SubElement(root, "testsuite", name=family)
        suite.set("timestamp", junit_timestamp(report.started_at))
        suite.set("hostname", xml_text(report.host.hostname))
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="offgrid.version", value=report.tool_version)
        cases = [_testcase(control) for control in controls]
        suite.extend(cases)
        _set_counts(suite, _counts(cases))
        all_cases.extend(cases)
    bench = _benchmark_suite(report)
    if bench is not None:
        root.append(bench)
        all_cases.extend(bench.findall("testcase"))
    # <testsuites> has no `skipped` attribute in junit-10.xsd (Jenkins xUnit rejects it);
    # each <testsuite> carries its own skipped count.
    totals = _counts(all_cases)
    del totals["skipped"]
    _set_counts(root, totals)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"

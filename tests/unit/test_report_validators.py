"""Every format offgrid writes passes the validator its users run: promtool, Jenkins xUnit's
junit-10.xsd, NIST's OSCAL schema and compliance-trestle. Each check is also shown to reject
the defect it guards against, so a green run means the validator looked."""

from __future__ import annotations

import json
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from auditor.report import junit, oscal, prometheus
from auditor.report.model import Report
from auditor.report.write import write_all, write_report
from tests.unit.report_sample import sample_report
from tests.unit.validators import junit_errors, oscal_errors, promtool_check, trestle_load


@pytest.fixture
def report() -> Report:
    return sample_report()


def test_promtool_accepts_the_textfile(report: Report) -> None:
    checked = promtool_check(prometheus.render(report))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout + checked.stderr == ""


def test_promtool_accepts_the_textfile_without_benchmark(report: Report) -> None:
    checked = promtool_check(prometheus.render(replace(report, benchmark=None)))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("offgrid_controls_total 1", '"_total" suffix'),
        ("offgrid_bench_ttft_ms 1", "abbreviated units"),
        ('offgrid_bench_x{quantile="0.5"} 1', '"quantile" label'),
    ],
)
def test_promtool_rejects_what_the_textfile_avoids(line: str, complaint: str) -> None:
    name = line.split("{", maxsplit=1)[0].split(maxsplit=1)[0]
    checked = promtool_check(f"# HELP {name} x\n# TYPE {name} gauge\n{line}\n")
    assert checked.returncode != 0 and complaint in checked.stdout + checked.stderr


def test_textfile_is_readable_by_an_unprivileged_node_exporter(
    report: Report, tmp_path: Path
) -> None:
    path = write_report(report, "prometheus", tmp_path / "audit.prom")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    written = {p.suffix: p for p in write_all(report, tmp_path, "all", ["json", "prometheus"])}
    assert stat.S_IMODE(written[".prom"].stat().st_mode) == 0o644
    assert stat.S_IMODE(written[".json"].stat().st_mode) == 0o640


def test_junit_passes_jenkins_xunit_schema(report: Report) -> None:
    assert junit_errors(junit.render(report)) == []


def test_junit_schema_rejects_skipped_on_testsuites(report: Report) -> None:
    text = junit.render(report).replace("<testsuites ", '<testsuites skipped="2" ', 1)
    assert any("skipped" in error for error in junit_errors(text))


def test_oscal_passes_nist_schema(report: Report) -> None:
    assert oscal_errors(oscal.assessment_results(report)) == []


def test_nist_schema_rejects_a_broken_document(report: Report) -> None:
    document = oscal.assessment_results(report)
    del document["assessment-results"]["import-ap"]
    document["assessment-results"]["results"][0]["findings"][0]["target"]["status"] = {
        "state": "not-applicable"
    }
    errors = oscal_errors(document)
    assert any("import-ap" in e for e in errors) and any("not-applicable" in e for e in errors)


def test_oscal_loads_in_trestle(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "ar.json"
    path.write_text(oscal.render(report), "utf-8")
    loaded = trestle_load(path)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.split() == ["1", "4"]  # one result, a finding per applicable control


def test_trestle_rejects_urn_namespaces(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "ar.json"
    path.write_text(oscal.render(report).replace(oscal.PROP_NS, "urn:offgrid:oscal"), "utf-8")
    loaded = trestle_load(path)
    assert loaded.returncode != 0 and "ns" in loaded.stderr


def test_oscal_carries_remediation_and_framework_mappings(report: Report) -> None:
    (result,) = oscal.assessment_results(report)["assessment-results"]["results"]
    findings = {f["target"]["target-id"]: f for f in result["findings"]}
    refs = {(p["class"], p["value"]) for p in findings["OG-NET-01"]["props"] if "class" in p}
    assert ("nist", "SC-7") in refs and ("soc2", "CC6.1") in refs
    risks = {r["uuid"]: r for r in result["risks"]}
    (link,) = findings["OG-NET-03"]["related-risks"]
    risk = risks[link["risk-uuid"]]
    control = next(c for c in report.controls if c.id == "OG-NET-03")
    assert risk["status"] == "open"
    assert risk["remediations"][0]["description"].startswith(control.remediation[:20])
    (waived_link,) = findings["OG-HRD-01"]["related-risks"]
    assert risks[waived_link["risk-uuid"]]["status"] == "deviation-approved"
    assert "GPU driver needs" in findings["OG-HRD-01"]["remarks"]
    assert "related-risks" not in findings["OG-NET-01"]


def test_oscal_document_is_json_round_trippable(report: Report) -> None:
    assert json.loads(oscal.render(report)) == oscal.assessment_results(report)

"""Every renderer on a realistic report: structure, counts, escaping, determinism."""

from __future__ import annotations

import base64
import json
import re
import sys
import types
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace

import pytest

from auditor.errors import InputError
from auditor.report import html, junit, markdown, oscal, prometheus
from auditor.report.bench_json import benchmark_from_json
from auditor.report.model import Report, to_dict
from auditor.report.render import available_formats, render
from auditor.verdicts import Evidence
from tests.unit.report_sample import HOSTILE, sample_report


@pytest.fixture
def report() -> Report:
    return sample_report()


@pytest.fixture
def real_charts() -> None:
    """Requested by the tests that draw charts with matplotlib (slow: about a second)."""


@pytest.fixture(autouse=True)
def _no_charts_unless_asked(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "real_charts" not in request.fixturenames:
        monkeypatch.setitem(sys.modules, "auditor.report.charts", None)  # import fails


def test_every_format_renders(report: Report) -> None:
    assert available_formats() == ["json", "html", "markdown", "junit", "oscal", "prometheus"]
    for fmt in available_formats():
        text = render(report, fmt)
        assert text.endswith("\n") and len(text) > 200, fmt


def test_every_format_renders_a_report_without_controls_or_sections(report: Report) -> None:
    bare = replace(report, controls=(), incomplete=(), benchmark=None, integrity=None, engine=None)
    for fmt in available_formats():
        assert render(bare, fmt)


# ---------------------------------------------------------------- HTML

_EXTERNAL = re.compile(r"""(?:src|href|action|srcset)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def test_html_is_self_contained(report: Report) -> None:
    page = html.render(report)
    assert not _EXTERNAL.search(page)
    assert "<link" not in page and "@import" not in page
    assert not re.search(r"url\((?!#)", page)  # only references inside the page
    assert "<script" not in page.replace("&lt;script", "")


def test_html_escapes_evidence(report: Report) -> None:
    page = html.render(report)
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;img" in page


def test_html_shows_what_a_reviewer_needs(report: Report) -> None:
    page = html.render(report)
    for text in (
        "ws-07",
        "offgrid 0.1.0",
        "Ran without root: other users&#39; sockets and environments are hidden.",
        ">FAIL<",
        "OG-NET-03",
        "Why it matters",
        "Remediation",
        "NIST 800-53",
        "GPU driver needs /dev access &amp; writable memory",  # the waiver
        "pid 4242 vanished during the scan",  # incomplete
        "qwen2.5-coder:7b",  # integrity models
        "/opt/ollama/lib/libggml.so",  # integrity records as a table
        "blob sha256-ab12 size 10 != 12",
        "Category: completion (Completion tasks)",
        "read timeout after 120 s",
        "prompt_eval_ms",
        "TTFT (ms)",
        "Concurrency",
        "Cold start",
        "decision matrix",
        "long refactor",
    ):
        assert text in page, text
    # failed and unevaluated controls open, the rest closed
    assert re.search(r'id="control-OG-NET-03" open>', page)
    assert re.search(r'id="control-OG-CFG-01" open>', page)
    assert re.search(r'id="control-OG-NET-01">', page)


def test_html_without_chart_support_says_so(report: Report) -> None:
    page = html.render(report)
    assert "Charts are not included" in page


def test_html_with_real_charts_stays_self_contained(report: Report, real_charts: None) -> None:
    pytest.importorskip("matplotlib")
    page = html.render(report)
    assert page.count("<svg") >= 2 and "<?xml" not in page
    assert "Charts are not included" not in page and "could not be drawn" not in page
    assert not _EXTERNAL.search(page)
    assert not re.search(r"url\((?!#)", page)


@dataclass(frozen=True)
class _Chart:
    title: str
    svg: str


def test_html_embeds_charts_inline(report: Report, monkeypatch: pytest.MonkeyPatch) -> None:
    svg = '<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>'
    module = types.ModuleType("auditor.report.charts")
    module.benchmark_charts = lambda bench: [_Chart("TTFT by category", svg)]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "auditor.report.charts", module)
    page = html.render(report)
    assert "TTFT by category" in page
    assert '<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>' in page
    assert "<?xml" not in page and "<!DOCTYPE svg>" not in page
    assert "Charts are not included" not in page


def test_a_benchmark_of_another_shape_is_refused_when_the_report_is_read() -> None:
    # The benchmark is typed from measurement to renderer: an odd shape never reaches a
    # renderer, it is refused at the edge with the path of the first bad field.
    data = to_dict(sample_report())
    data["benchmark"]["categories"][0]["ttft_ms"] = {"median": "fast"}
    with pytest.raises(InputError, match=r"benchmark\.categories\[0\]\.ttft_ms"):
        benchmark_from_json(data["benchmark"])
    del data["benchmark"]["categories"][0]["ttft_ms"]
    with pytest.raises(InputError, match="missing field 'ttft_ms'"):
        benchmark_from_json(data["benchmark"])


def test_html_survives_charts_that_cannot_be_drawn(
    report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(bench: object) -> list[_Chart]:
        raise ValueError("no finite values")

    module = types.ModuleType("auditor.report.charts")
    module.benchmark_charts = broken  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "auditor.report.charts", module)
    page = html.render(report)
    assert "Charts could not be drawn from this benchmark section" in page
    assert "Category: completion" in page


# ---------------------------------------------------------------- Markdown


def test_markdown_escapes_and_keeps_tables_intact(report: Report) -> None:
    text = markdown.render(report)
    unescaped_tags = re.findall(r"(?<!\\)<(?!br>)", text)
    assert unescaped_tags == []
    assert r"\<script\>alert" in text
    for line in text.splitlines():
        if line.startswith("| OG-") or line.startswith("| [OG-"):
            assert line.count(" | ") + 2 == line.count("|") - line.count(r"\|"), line
    assert "| [OG-NET-03](#og-net-03) |" in text
    assert "**Verdict: FAIL**" in text


def test_markdown_renders_evidence_literally(report: Report) -> None:
    markdown_it = pytest.importorskip("markdown_it")  # ships with rich
    page = markdown_it.MarkdownIt("commonmark").enable("table").render(markdown.render(report))
    assert "<script" not in page and "<img" not in page
    literal = HOSTILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert f"<td>{literal.replace(chr(34), '&quot;')}</td>" in page
    for table in re.findall(r"<table>.*?</table>", page, re.S):
        widths = {
            row.count("<td") + row.count("<th") for row in re.findall(r"<tr>.*?</tr>", table, re.S)
        }
        assert len(widths) == 1, table


def test_markdown_multiline_evidence_stays_in_one_row(report: Report) -> None:
    control = replace(report.controls[0], evidence=(Evidence("env", "A=1\nB=2|3"),))
    text = markdown.render(replace(report, controls=(control,)))
    assert "| env | A=1<br>B=2\\|3 |" in text


# ---------------------------------------------------------------- JUnit


def test_junit_parses_and_counts_match(report: Report) -> None:
    root = ET.fromstring(junit.render(report))
    assert root.tag == "testsuites"
    # five controls and the benchmark's GPU offload test
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("6", "1", "1")
    assert root.get("skipped") is None  # not an attribute of <testsuites> in junit-10.xsd
    assert sum(int(s.get("skipped") or 0) for s in root.iter("testsuite")) == 2
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"OG-NET", "OG-CFG", "OG-TEL", "OG-HRD", "benchmark"}
    net = suites["OG-NET"]
    assert (net.get("tests"), net.get("failures")) == ("2", "1")
    assert len(net.findall("testcase")) == 2
    failure = net.find("testcase/failure")
    assert (
        failure is not None and failure.get("message") == "engine tree connected to 203.0.113.9:443"
    )
    assert HOSTILE in (failure.text or "")  # escaped in XML, intact once parsed
    waived = suites["OG-HRD"].find("testcase/skipped")
    assert waived is not None and "GPU driver needs" in (waived.get("message") or "")
    assert suites["OG-HRD"].find("testcase/failure") is None
    assert net.get("timestamp") == "2026-11-24T02:00:00"


def test_junit_survives_control_characters(report: Report) -> None:
    control = replace(report.controls[1], evidence=(Evidence("raw", "a\x00b\x1bc"),))
    root = ET.fromstring(junit.render(replace(report, controls=(control,))))
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None and "a\\x00b\\x1bc" in (failure.text or "")


# ---------------------------------------------------------------- OSCAL


def test_oscal_has_the_required_structure(report: Report) -> None:
    doc = json.loads(oscal.render(report))["assessment-results"]
    assert doc["metadata"]["oscal-version"].startswith("1.1.")
    assert {"title", "last-modified", "version"} <= set(doc["metadata"])
    plan = doc["back-matter"]["resources"][0]
    assert doc["import-ap"]["href"] == "#" + plan["uuid"]
    assert base64.b64decode(plan["base64"]["value"]) == oscal.catalog_bytes()
    (result,) = doc["results"]
    assert {"uuid", "title", "description", "start", "reviewed-controls"} <= set(result)
    host_uuid = result["local-definitions"]["inventory-items"][0]["uuid"]
    observations = {o["uuid"]: o for o in result["observations"]}
    assert len(observations) == len(report.controls)  # not-applicable ones observed too
    for observation in observations.values():
        assert observation["methods"] == ["TEST"]
        assert observation["subjects"][0]["subject-uuid"] == host_uuid
        assert observation["collected"] == report.finished_at
    states = {}
    for finding in result["findings"]:
        target = finding["target"]
        assert target["type"] == "objective-id"
        (related,) = finding["related-observations"]
        assert related["observation-uuid"] in observations
        states[target["target-id"]] = target["status"]["state"]
    assert states == {
        "OG-NET-01": "satisfied",
        "OG-NET-03": "not-satisfied",
        "OG-CFG-01": "not-satisfied",
        "OG-HRD-01": "not-satisfied",
    }  # OG-TEL-01 is not applicable: excluded from the review, no finding
    (selection,) = result["reviewed-controls"]["control-selections"]
    assert selection["exclude-controls"] == [{"control-id": "OG-TEL-01"}]
    evidence = observations[result["findings"][1]["related-observations"][0]["observation-uuid"]]
    assert any("203.0.113.9" in e["description"] for e in evidence["relevant-evidence"])


def test_oscal_is_deterministic_and_content_addressed(report: Report) -> None:
    assert oscal.render(report) == oscal.render(sample_report())
    later = replace(report, finished_at="2026-11-24T03:00:00+00:00")
    first = json.loads(oscal.render(report))["assessment-results"]
    second = json.loads(oscal.render(later))["assessment-results"]
    assert first["uuid"] != second["uuid"]


def test_oscal_uuids_are_unique(report: Report) -> None:
    text = oscal.render(report)
    found = re.findall(r'"uuid": "([0-9a-f-]{36})"', text)
    assert len(found) == len(set(found))


# ---------------------------------------------------------------- Prometheus

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
_VALUE = r"(?:[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?Inf|NaN)"
_HELP = re.compile(rf"^# HELP ({_NAME}) (?:[^\\\n]|\\[\\n])*$")
_TYPE = re.compile(rf"^# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)$")
_SAMPLE = re.compile(rf"^({_NAME})(\{{{_LABEL}(?:,{_LABEL})*\}})? ({_VALUE})$")


def parse_exposition(text: str) -> dict[tuple[str, str], float]:
    """A strict reader of the text format: every line must be HELP, TYPE or a sample,
    each family typed before its samples, no family or series twice."""
    assert text.endswith("\n")
    typed: set[str] = set()
    helped: set[str] = set()
    samples: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if match := _HELP.match(line):
            assert match.group(1) not in helped, line
            helped.add(match.group(1))
        elif match := _TYPE.match(line):
            assert match.group(1) not in typed, line
            typed.add(match.group(1))
        else:
            match = _SAMPLE.match(line)
            assert match, f"not exposition format: {line!r}"
            name, labels, value = match.group(1), match.group(2) or "", match.group(3)
            assert name in typed and name in helped, line
            assert (name, labels) not in samples, line
            samples[(name, labels)] = float(value)
    return samples


def test_prometheus_lines_parse(report: Report) -> None:
    samples = parse_exposition(prometheus.render(report))
    key = '{id="OG-NET-03",family="OG-NET",severity="critical",status="fail"}'
    assert samples[("offgrid_control_status", key)] == 1
    assert samples[("offgrid_control_status", key.replace("03", "01").replace("fail", "pass"))] == 1
    assert samples[("offgrid_controls", '{status="waived"}')] == 1
    assert samples[("offgrid_audit_incomplete", "")] == 2
    assert samples[("offgrid_audit_timestamp_seconds", "")] == pytest.approx(1795485607.654321)
    ttft = samples[("offgrid_bench_ttft_seconds", '{category="completion",percentile="95"}')]
    assert ttft == pytest.approx(0.2004)
    assert ("offgrid_bench_throughput_tokens_per_second", '{users="4"}') in samples


def test_prometheus_escapes_label_values(report: Report) -> None:
    host = replace(report.host, hostname='we"ird\\host\nname')
    samples = parse_exposition(prometheus.render(replace(report, host=host)))
    info = [labels for name, labels in samples if name == "offgrid_audit_info"]
    assert info == ['{version="0.1.0",host="we\\"ird\\\\host\\nname"}']


def test_prometheus_without_benchmark_has_no_bench_metrics(report: Report) -> None:
    samples = parse_exposition(prometheus.render(replace(report, benchmark=None)))
    assert not [name for name, _ in samples if name.startswith("offgrid_bench_")]

"""The decisions the templates rely on: verdict, effective status, number format."""

from __future__ import annotations

from dataclasses import replace

import pytest

from auditor.checks.catalog import load_catalog
from auditor.report import html
from auditor.report.bench_json import benchmark_from_json
from auditor.report.benchmark_view import benchmark_view
from auditor.report.model import PrivilegeSection
from auditor.report.sections import format_value, key_values
from auditor.report.view import build, privilege_note, ran_as_root, verdict
from auditor.verdicts import Status
from tests.unit.report_sample import sample_report


def test_verdict_fail_beats_incomplete() -> None:
    result = verdict(sample_report())
    assert (result.kind, result.headline) == ("fail", "FAIL")
    assert "OG-NET-03" in result.detail and "OG-HRD-01" not in result.detail  # waived


def test_verdict_incomplete_when_something_was_not_evaluated() -> None:
    report = sample_report()
    controls = tuple(c for c in report.controls if c.status is not Status.FAIL or c.waiver)
    assert verdict(replace(report, controls=controls)).kind == "incomplete"
    passing = tuple(c for c in controls if c.status is not Status.ERROR)
    assert verdict(replace(report, controls=passing)).kind == "incomplete"  # incomplete items


def test_verdict_pass_mentions_waivers() -> None:
    report = sample_report()
    controls = tuple(c for c in report.controls if c.status is not Status.ERROR)
    controls = tuple(c for c in controls if c.status is not Status.FAIL or c.waiver)
    result = verdict(replace(report, controls=controls, incomplete=()))
    assert result.kind == "pass" and "1 failure(s) waived" in result.detail
    assert verdict(replace(report, controls=())).kind == "none"


@pytest.mark.parametrize(
    ("privilege", "expected"),
    [
        ({"euid": 0}, "Ran as root"),
        ({"is_root": False}, "Ran without root"),
        ({"note": "custom words"}, "custom words"),
        ({}, ""),
    ],
)
def test_privilege_note(privilege: dict[str, object], expected: str) -> None:
    section = PrivilegeSection(**privilege)  # type: ignore[arg-type]
    assert privilege_note(section, ran_as_root(section)).startswith(expected)


def test_values_are_formatted_for_a_reader() -> None:
    assert format_value(None) == "\N{EN DASH}"
    assert format_value(True) == "yes"
    assert format_value(4300.5) == "4,300"
    assert format_value(29.54) == "29.5"
    assert format_value(0.125) == "0.12"
    assert format_value([16, 64]) == "16, 64"
    assert format_value([{"a": 1}]) == '[{"a": 1}]'
    assert (
        format_value({"ms": [563.91304, 1085.6521], "n": 422.064}) == "ms: 563.9, 1,086; n: 422.1"
    )
    assert key_values({"a": {"b": 1, "c": {}}, "d": "x"}) == (
        ("a.b", "1"),
        ("a.c", "\N{EN DASH}"),
        ("d", "x"),
    )


def test_benchmark_view_leaves_out_what_is_missing() -> None:
    unmeasured = dict.fromkeys(
        ("ttft_ms", "total_ms", "tpot_ms", "itl_ms", "decode_tps", "output_tokens", "server")
    )
    category = {"name": "chat", "target_tokens": [1, 2], "requests": 1, "failures": 1}
    settings = {"runs": 1, "warmup": 0, "nonce": True, "temperature": None, "seed": None}
    section = {
        "schema": "offgrid-benchmark/1",
        "suite": {"name": "s", "version": "1"},
        "endpoint": "http://127.0.0.1:1",
        "api": "openai",
        "model": "m",
        "settings": settings | {"percentile_method": "linear", "connection": "keep-alive"},
        "categories": [category | unmeasured],
        "cold_start": None,
        "concurrency": [],
        "crossover": None,
        "tco": None,
    }
    view = benchmark_view(benchmark_from_json(section))
    assert view is not None
    assert view.categories[0].stats.rows == ()
    assert view.concurrency is None and not view.cold_start and not view.tco
    assert benchmark_view(None) is None


def test_duration_and_effective_status() -> None:
    view = build(sample_report())
    assert dict(view.run)["Duration"] == "7.5 s"
    assert [c.status for c in view.controls] == [  # failures first
        "fail",
        "error",
        "waived",
        "pass",
        "not_applicable",
    ]


def test_labels_name_error_one_way_and_failures_carry_remediation() -> None:
    text = html.render(sample_report())
    assert "Not evaluated" not in text
    assert ">Error</div>" in text and ">ERROR</span>" in text
    first_row = text.index('<tr class="row-')
    assert text.startswith('<tr class="row-fail">', first_row)
    remediation = load_catalog()["OG-NET-03"].remediation
    assert remediation[-40:] in text[first_row : text.index("</tr>", first_row)]


def test_percentiles_from_few_samples_say_so() -> None:
    bench = sample_report().benchmark
    assert bench is not None
    first = bench.categories[0]
    assert first.ttft_ms is not None
    few = replace(first, ttft_ms=replace(first.ttft_ms, median=10.0, p95=30.0, p99=31.0, count=3))
    view = benchmark_view(replace(bench, categories=(few,)))
    assert view is not None
    ttft = next(r for r in view.categories[0].stats.rows if r[0].startswith("TTFT"))
    assert "(n=3: too few samples for a p95" in ttft[2] and "(n=3:" in ttft[3] and ttft[7] == "3"
    assert "n (samples)" in view.categories[0].stats.header


def test_every_namespace_looked_at_is_shown_with_what_was_read_or_why_not() -> None:
    rows = dict(build(sample_report()).engine)
    engine = rows["network namespace (engine)"]
    assert engine.startswith("net:[4026532291] (/system.slice/docker-3f2a.scope) via pid 812")
    assert "eth0 (veth, 172.17.0.2/16)" in engine and "6 route(s)" in engine
    other = rows["network namespace (other engine candidate)"]
    assert other.endswith("NOT READ: setns into /proc/990/ns/net: Operation not permitted")
    assert "network namespace (audit)" in rows

"""The benchmark section validates against its schema and draws deterministic charts."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources

import jsonschema
import pytest

from auditor.bench.crossover import CloudRange
from auditor.bench.decisions import crossover_section
from auditor.bench.results import BenchmarkSection
from auditor.bench.runner import CategoryRun
from auditor.bench.section import category_section
from auditor.bench.suite import load_suite
from auditor.report.bench_json import benchmark_to_json
from tests.unit.bench_fakes import result, synthetic_section


def _validator() -> jsonschema.Draft202012Validator:
    text = resources.files("auditor.data").joinpath("benchmark.schema.json").read_text("utf-8")
    return jsonschema.Draft202012Validator(json.loads(text))


def test_section_states_its_method_and_validates() -> None:
    section = synthetic_section(nonce=False)
    settings = section.settings
    assert settings.percentile_method == "linear"
    assert "numpy" in (settings.percentile_method_description or "")
    assert settings.connection == "keep-alive" and settings.nonce is False
    category = section.categories[0]
    assert category.tpot_ms is not None and category.decode_tps is not None
    assert category.tpot_ms.median == pytest.approx(25.0, rel=0.05)
    assert category.decode_tps.median == pytest.approx(40.0, rel=0.05)
    assert category.token_sources == {"server-usage": 4}
    _validator().validate(benchmark_to_json(section))


def test_schema_rejects_a_section_without_percentile_method() -> None:
    section = benchmark_to_json(synthetic_section())
    del section["settings"]["percentile_method"]
    with pytest.raises(jsonschema.ValidationError):
        _validator().validate(section)


def _with_crossover() -> BenchmarkSection:
    section = synthetic_section()
    crossover = crossover_section(
        section.categories, CloudRange("c", "", 180, 600, 80, 150), [], True
    )
    return replace(section, crossover=crossover)


def test_crossover_section_validates() -> None:
    _validator().validate(benchmark_to_json(_with_crossover()))


def test_charts_are_deterministic_self_contained_svg() -> None:
    charts = pytest.importorskip("auditor.report.charts")
    benchmark_charts = charts.benchmark_charts

    section = _with_crossover()
    first, second = benchmark_charts(section), benchmark_charts(section)
    assert [c.title for c in first] == [
        "Latency CDF: time to first token and total time",
        "TTFT and decode rate per category",
        "Crossover: local vs cloud total time by output length",
    ]
    for a, b in zip(first, second, strict=True):
        assert a.svg == b.svg
        assert "<svg" in a.svg and 'xlink:href="http' not in a.svg and "<dc:date>" not in a.svg
    assert len(benchmark_charts(replace(section, crossover=None))) == 2


def test_stopped_at_max_tokens_reads_the_finish_reason_not_the_count() -> None:
    category = load_suite().category("autocomplete")
    cap = category.max_tokens
    results = (
        result(10, 100, cap - 1, finish_reason="length"),  # a count one short of the cap
        result(10, 100, cap, finish_reason="stop"),  # ended by itself at the cap
        result(10, 100, cap, finish_reason="length"),
    )
    run = CategoryRun(category, results, ("a", "b", "c"))
    section = category_section(run, "linear")
    assert section.stopped_at_max_tokens == 2
    assert section.samples is not None
    assert section.samples.finish_reasons == ("length", "stop", "length")

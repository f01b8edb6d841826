"""Crossover, decision matrix and TCO arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.bench.crossover import CloudRange, Side, crossover_tokens, load_cloud
from auditor.bench.decisions import crossover_section
from auditor.bench.results import Level
from auditor.bench.runner import CategoryRun
from auditor.bench.section import category_section
from auditor.bench.suite import load_suite
from auditor.bench.tco import load_prices, tco_section
from auditor.errors import InputError
from tests.unit.bench_fakes import result, synthetic_json, synthetic_section

EXAMPLES = Path(__file__).resolve().parents[2] / "auditor" / "data" / "examples"
SEED_CLOUD = EXAMPLES / "cloud-reference.seed.json"


def test_crossover_is_where_both_totals_meet() -> None:
    local, cloud = Side(ttft_ms=50, decode_tps=50), Side(ttft_ms=400, decode_tps=100)
    n = crossover_tokens(local, cloud)
    assert n == pytest.approx(350 / (20 - 10))  # 35 tokens
    assert local.total_ms(n) == pytest.approx(cloud.total_ms(n))
    assert local.total_ms(20) < cloud.total_ms(20) and local.total_ms(100) > cloud.total_ms(100)


def test_no_crossover_when_one_side_wins_everywhere() -> None:
    assert crossover_tokens(Side(50, 200), Side(400, 100)) is None  # local faster and quicker
    assert crossover_tokens(Side(50, 100), Side(400, 100)) is None  # same rate


def test_seed_reference_file_loads_as_labelled_seed_figures() -> None:
    cloud = load_cloud(SEED_CLOUD)
    assert (cloud.ttft_low, cloud.ttft_high, cloud.tps_low, cloud.tps_high) == (180, 600, 80, 150)
    assert "SEED FIGURES" in cloud.label
    assert cloud.scenarios["typical"] == Side(390, 115)


def test_cloud_figures_can_come_from_a_measured_results_file(tmp_path: Path) -> None:
    measured = synthetic_json(ttft_ms=300, tps=120)
    path = tmp_path / "cloud.json"
    path.write_text(json.dumps({"benchmark": measured}))
    cloud = load_cloud(path)
    assert cloud.ttft_low == pytest.approx(301.5) and cloud.tps_high == pytest.approx(120, rel=0.05)


@pytest.mark.parametrize(
    "body",
    [
        '{"kind": "offgrid-cloud-reference", "ttft_ms": {"low": 5}}',
        '{"kind": "offgrid-cloud-reference", "ttft_ms": {"low": 9, "high": 5},'
        ' "decode_tps": {"low": 1, "high": 2}}',
        "[1]",
        "{oops",
    ],
)
def test_bad_reference_files_are_input_errors(tmp_path: Path, body: str) -> None:
    path = tmp_path / "ref.json"
    path.write_text(body)
    with pytest.raises(InputError):
        load_cloud(path)


def test_decision_matrix_is_computed_from_the_numbers() -> None:
    section = synthetic_section(ttft_ms=50, tps=40)
    levels = [Level(4, 40, 0, 600.0, None, None)]
    result = crossover_section(section.categories, load_cloud(SEED_CLOUD), levels, True)
    rows = {r.use_case: r for r in result.decision_matrix}
    # local 50 ms + n/40 tok/s vs typical cloud 390 ms + n/115 tok/s: crossover ~21 tokens
    assert result.crossover_tokens.typical == pytest.approx(340 / (25 - 1000 / 115), rel=0.02)
    assert rows["Autocomplete (inline)"].recommendation == "Hybrid"  # 20 local, 80 cloud
    assert rows["Code explanation"].recommendation == "Cloud"
    assert rows["Security-sensitive code"].recommendation == "Local"
    assert "loopback" in rows["Security-sensitive code"].rationale
    assert rows["Teams greater than 10 developers"].recommendation == "Hybrid"  # 60 < 115 tok/s
    assert "60 tok/s each" in rows["Teams greater than 10 developers"].rationale


def test_fast_local_engine_wins_every_coding_row() -> None:
    section = synthetic_section(ttft_ms=20, tps=400)
    result = crossover_section(section.categories, CloudRange("c", "", 180, 600, 80, 150), [], True)
    coding = [r for r in result.decision_matrix if r.category]
    assert {r.recommendation for r in coding} == {"Local"}
    team = result.decision_matrix[-1]
    assert team.recommendation is None and "--concurrency" in team.rationale


def test_each_coding_row_has_its_own_crossover_from_its_own_category() -> None:
    # Prompts differ in length, so TTFT differs by category; a pooled TTFT would give
    # autocomplete another category's prefill.
    ttfts = {"autocomplete": 100.0, "function": 200.0, "refactor": 300.0, "explain": 350.0}
    runs = []
    for category in load_suite().categories:
        ttft, tokens = ttfts[category.name], category.target_tokens[0]
        runs.append(
            CategoryRun(
                category,
                tuple(result(ttft, ttft + (tokens - 1) * 25.0, tokens) for _ in range(3)),
                ("a", "b", "c"),
            )
        )
    categories = [category_section(run, "linear") for run in runs]
    cloud = CloudRange("c", "", 180, 600, 80, 150)  # typical: 390 ms, 115 tok/s
    crossover = crossover_section(categories, cloud, [], True)
    own = {c.category: c for c in crossover.categories}
    rows = {r.category: r for r in crossover.decision_matrix if r.category}
    for name, ttft in ttfts.items():
        assert own[name].local.ttft_ms == pytest.approx(ttft)
        assert "this category's 3 runs" in (own[name].local.basis or "")
        typical = own[name].crossover_tokens.typical
        assert typical == pytest.approx((390 - ttft) / (25 - 1000 / 115))
        assert rows[name].figures.local_ttft_ms == own[name].local.ttft_ms
        assert rows[name].figures.crossover_tokens == typical
    assert crossover.local.ttft_ms == pytest.approx(250.0)  # pooled: only the offline row


def test_tco_from_the_example_price_file() -> None:
    prices = load_prices(EXAMPLES / "prices.example.toml")
    assert "EXAMPLE VALUES" in prices.label
    tco = tco_section(prices, ["autocomplete"])
    assert tco.power_kwh_per_month == pytest.approx(69.0)  # 575 W x 4 h x 30 d (seed: ~69 kWh)
    assert tco.power_cost_per_month == pytest.approx(11.04)  # at $0.16 (seed: ~$11)
    assert tco.cloud_cost_per_month["autocomplete"] == pytest.approx(
        800 * 30 * (1200 * 3 + 50 * 15) / 1e6
    )
    assert tco.cloud_cost_per_month_total == pytest.approx(146.7)
    assert tco.break_even_months == pytest.approx(1999 / (146.7 - 11.04))
    hybrid = tco.hybrid
    assert hybrid is not None
    assert hybrid.cloud_cost_avoided_per_month == pytest.approx(104.4)
    assert hybrid.break_even_months == pytest.approx(1999 / (104.4 - 11.04))


def test_no_break_even_when_power_costs_more_than_the_cloud(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        "[hardware]\ncost = 1000\n[power]\nwatts = 1000\nhours_per_day = 24\nprice_per_kwh = 1\n"
        "[cloud]\ninput_per_million = 1\noutput_per_million = 1\n"
        '[[workload]]\ncategory = "autocomplete"\ncalls_per_day = 1\n'
        "input_tokens = 1\noutput_tokens = 1\n"
    )
    assert tco_section(load_prices(path), None).break_even_months is None


@pytest.mark.parametrize(
    "body", ["[hardware]\ncost = 1\n", "[hardware]\ncost = -1\n[power]\n[cloud]\n", "x = ["]
)
def test_bad_price_files_are_input_errors(tmp_path: Path, body: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(body)
    with pytest.raises(InputError):
        load_prices(path)

"""Display rows for the benchmark section, read from its records (auditor.bench.results).

Metrics, concurrency levels and server figures are read field by field. The parts a
reviewer reads as facts (settings, cold start, crossover, TCO, a category's counts) are
shown as every field of their record, flattened to rows, so a field added to a record
is shown without a change here.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.bench.results import BenchmarkSection, CategoryResult, Level, ServerFigures, Summary
from auditor.report.bench_json import to_json
from auditor.report.sections import (
    MISSING,
    Block,
    KeyValues,
    Table,
    format_value,
    key_values,
    split_records,
)

STAT_COLUMNS = ("median", "p95", "p99", "mean", "min", "max", "count")
# Not shown as category facts: the metrics have their own table, raw samples are for
# machines (charts, re-analysis), not for a reader.
_CATEGORY_SKIP = (
    "name",
    "title",
    "server",
    "samples",
    "ttft_ms",
    "total_ms",
    "tpot_ms",
    "itl_ms",
    "decode_tps",
    "output_tokens",
)
_SERVER_STATS = (
    "prompt_eval_ms",
    "eval_ms",
    "load_ms",
    "total_ms",
    "decode_tps",
    "prompt_tokens",
)
_BENCH_PARTS = ("settings", "categories", "cold_start", "concurrency", "crossover", "tco")


@dataclass(frozen=True)
class CategoryView:
    name: str
    facts: KeyValues
    stats: Table
    server_facts: KeyValues
    server_stats: Table | None


@dataclass(frozen=True)
class BenchmarkView:
    facts: KeyValues
    settings: KeyValues
    categories: tuple[CategoryView, ...]
    cold_start: Block
    concurrency: Table | None
    concurrency_title: str
    crossover: Block
    tco: Block


def category_metrics(category: CategoryResult) -> tuple[tuple[str, Summary | None], ...]:
    """(row label, summary) in the order a reader compares them."""
    return (
        ("TTFT (ms)", category.ttft_ms),
        ("Total time (ms)", category.total_ms),
        ("TPOT (ms)", category.tpot_ms),
        ("ITL (ms)", category.itl_ms),
        ("Decode (tok/s)", category.decode_tps),
        ("Output tokens", category.output_tokens),
    )


# a percentile needs at least this many samples before one sample lies beyond it
PERCENTILE_MIN_SAMPLES = {"p95": 20, "p99": 100}
STAT_LABELS = {"count": "n (samples)"}


def _cell(stats: Summary, column: str) -> str:
    """The figure; a p95/p99 from too few samples says so, with its n."""
    text = format_value(getattr(stats, column))
    needed = PERCENTILE_MIN_SAMPLES.get(column)
    if needed and stats.count < needed:
        return f"{text} (n={stats.count}: too few samples for a {column}, near the maximum)"
    return text


def _stat_cells(stats: Summary) -> tuple[str, ...]:
    return tuple(_cell(stats, column) for column in STAT_COLUMNS)


def _stats_table(rows: list[tuple[str, Summary]]) -> Table:
    return Table(
        header=("Metric", *(STAT_LABELS.get(c, c) for c in STAT_COLUMNS)),
        rows=tuple((label, *_stat_cells(stats)) for label, stats in rows),
    )


def _server_stats(server: ServerFigures) -> list[tuple[str, Summary]]:
    pairs = (
        ("prompt_eval_ms", server.prompt_eval_ms),
        ("eval_ms", server.eval_ms),
        ("load_ms", server.load_ms),
        ("total_ms", server.total_ms),
        ("decode_tps", server.decode_tps),
        ("prompt_tokens", server.prompt_tokens),
    )
    return [(name, stats) for name, stats in pairs if stats is not None]


def _category_view(category: CategoryResult) -> CategoryView:
    metrics = [(label, stats) for label, stats in category_metrics(category) if stats]
    server_stats = _server_stats(category.server) if category.server else []
    server_facts: KeyValues = ()
    if category.server is not None:
        server_facts = key_values(to_json(category.server), skip=_SERVER_STATS)
    name = f"{category.name} ({category.title})" if category.title else category.name
    return CategoryView(
        name=name,
        facts=key_values(to_json(category), skip=_CATEGORY_SKIP),
        stats=_stats_table(metrics),
        server_facts=server_facts,
        server_stats=_stats_table(server_stats) if server_stats else None,
    )


def _stat(stats: Summary | None, column: str) -> str:
    return MISSING if stats is None else _cell(stats, column)


def _concurrency_table(levels: tuple[Level, ...]) -> Table | None:
    if not levels:
        return None
    header: tuple[str, ...] = ("Users", "Requests", "Failures", "Throughput (tok/s)", "n")
    header += ("TTFT median (ms)", "TTFT p95 (ms)", "Total median (ms)", "Total p95 (ms)")
    rows = tuple(
        (
            format_value(level.users),
            format_value(level.requests),
            format_value(level.failures),
            format_value(level.throughput_tps),
            _stat(level.ttft_ms, "count"),
            _stat(level.ttft_ms, "median"),
            _stat(level.ttft_ms, "p95"),
            _stat(level.total_ms, "median"),
            _stat(level.total_ms, "p95"),
        )
        for level in levels
    )
    return Table(header=header, rows=rows)


TEAM_TITLE = "Team view: simultaneous developers through the authenticated gateway"


def concurrency_title(benchmark: BenchmarkSection) -> str:
    access = benchmark.access
    return TEAM_TITLE if access and access.concurrency_view == "team" else "Concurrency"


def _block(part: object | None) -> Block:
    return Block((), ()) if part is None else Block(*split_records(to_json(part)))


def benchmark_view(benchmark: BenchmarkSection | None) -> BenchmarkView | None:
    if benchmark is None:
        return None
    return BenchmarkView(
        facts=key_values(to_json(benchmark), skip=_BENCH_PARTS),
        settings=key_values(to_json(benchmark.settings)),
        categories=tuple(_category_view(c) for c in benchmark.categories),
        cold_start=_block(benchmark.cold_start),
        concurrency=_concurrency_table(benchmark.concurrency),
        concurrency_title=concurrency_title(benchmark),
        crossover=_block(benchmark.crossover),
        tco=_block(benchmark.tco),
    )

"""Display rows for the free-form report sections: engine, integrity, benchmark.

Those sections belong to other parts of offgrid (auditor.models, auditor.bench) and
may gain fields; everything here reads them defensively, so a missing optional
part is simply not shown and an unknown one still appears as key/value rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

KeyValues = tuple[tuple[str, str], ...]
MISSING = "\N{EN DASH}"  # shown where a value is absent

STAT_COLUMNS = ("median", "p95", "p99", "mean", "min", "max", "count")
STAT_LABELS = {"count": "n (samples)"}
# (key in a benchmark category, row label), in the order a reader compares them
CATEGORY_METRICS = (
    ("ttft_ms", "TTFT (ms)"),
    ("total_ms", "Total time (ms)"),
    ("tpot_ms", "TPOT (ms)"),
    ("itl_ms", "ITL (ms)"),
    ("decode_tps", "Decode (tok/s)"),
    ("output_tokens", "Output tokens"),
)
# Not shown as category facts: the metrics have their own table, raw samples are
# for machines (charts, re-analysis), not for a reader.
_CATEGORY_SKIP = ("name", "title", "server", "samples", *(key for key, _ in CATEGORY_METRICS))
_BENCH_PARTS = ("settings", "categories", "cold_start", "concurrency", "crossover", "tco")


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class ModelFinding:
    name: str
    status: str
    problems: tuple[str, ...]


@dataclass(frozen=True)
class IntegrityView:
    facts: KeyValues
    models: tuple[ModelFinding, ...]
    tables: tuple[tuple[str, Table], ...]  # other lists of records, e.g. engine files


@dataclass(frozen=True)
class CategoryView:
    name: str
    facts: KeyValues
    stats: Table
    server_facts: KeyValues
    server_stats: Table | None


@dataclass(frozen=True)
class Block:
    """A free-form part: scalar facts, plus its lists of records as tables."""

    facts: KeyValues
    tables: tuple[tuple[str, Table], ...]

    def __bool__(self) -> bool:
        return bool(self.facts or self.tables)


@dataclass(frozen=True)
class BenchmarkView:
    facts: KeyValues
    settings: KeyValues
    categories: tuple[CategoryView, ...]
    cold_start: Block
    concurrency: Table | None
    crossover: Block
    tco: Block


def format_number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def format_value(value: Any) -> str:
    """A value as a reviewer reads it: numbers rounded, lists joined, JSON otherwise."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, str):
        return value
    return _format_collection(value)


def _format_collection(value: Any) -> str:
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {format_value(v)}" for k, v in value.items()) or MISSING
    if isinstance(value, Sequence) and not any(isinstance(v, Mapping | list) for v in value):
        return ", ".join(format_value(v) for v in value) or MISSING
    return json.dumps(value, sort_keys=True, default=str)


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def key_values(data: Any, skip: Sequence[str] = ()) -> KeyValues:
    """Flatten a free-form mapping into (dotted key, text) rows."""
    if not isinstance(data, Mapping):
        return ()
    rows: list[tuple[str, str]] = []
    for key, value in data.items():
        if key in skip:
            continue
        if isinstance(value, Mapping) and value:
            rows.extend((f"{key}.{sub}", text) for sub, text in key_values(value))
        else:
            rows.append((str(key), format_value(value)))
    return tuple(rows)


def records_table(records: Sequence[Mapping[str, Any]]) -> Table:
    header = tuple(dict.fromkeys(str(k) for record in records for k in record))
    rows = tuple(tuple(format_value(record.get(k)) for k in header) for record in records)
    return Table(header=header, rows=rows)


def split_records(data: Any, prefix: str = "") -> tuple[KeyValues, tuple[tuple[str, Table], ...]]:
    """Like key_values, but lists of records (at any depth) become tables of their own."""
    if not isinstance(data, Mapping):
        return (), ()
    rows: list[tuple[str, str]] = []
    tables: list[tuple[str, Table]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if _is_records(value):
            tables.append((name, records_table(value)))
        elif isinstance(value, Mapping) and value:
            sub_rows, sub_tables = split_records(value, f"{name}.")
            rows.extend(sub_rows)
            tables.extend(sub_tables)
        else:
            rows.append((name, format_value(value)))
    return tuple(rows), tuple(tables)


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def integrity_view(integrity: Mapping[str, Any] | None) -> IntegrityView | None:
    if not isinstance(integrity, Mapping):
        return None
    models = tuple(
        ModelFinding(
            name=format_value(model.get("name")),
            status=format_value(model.get("status")),
            problems=tuple(format_value(p) for p in model.get("problems") or ()),
        )
        for model in _mappings(integrity.get("models"))
    )
    facts, tables = split_records({k: v for k, v in integrity.items() if k != "models"})
    return IntegrityView(facts=facts, models=models, tables=tables)


# a percentile needs at least this many samples before one sample lies beyond it
PERCENTILE_MIN_SAMPLES = {"p95": 20, "p99": 100}


def _stat(stats: Any, column: str) -> str:
    if not isinstance(stats, Mapping):
        return MISSING
    text = format_value(stats.get(column))
    count = stats.get("count")
    needed = PERCENTILE_MIN_SAMPLES.get(column)
    if needed and isinstance(count, int) and count < needed and text != MISSING:
        return f"{text} (n={count}: too few samples for a {column}, near the maximum)"
    return text


def _is_stats(value: Any) -> bool:
    return isinstance(value, Mapping) and any(column in value for column in STAT_COLUMNS)


def _stats_table(rows: list[tuple[str, Any]]) -> Table:
    return Table(
        header=("Metric", *(STAT_LABELS.get(c, c) for c in STAT_COLUMNS)),
        rows=tuple((label, *(_stat(stats, c) for c in STAT_COLUMNS)) for label, stats in rows),
    )


def _category_view(category: Mapping[str, Any]) -> CategoryView:
    metrics = [
        (label, category[key]) for key, label in CATEGORY_METRICS if _is_stats(category.get(key))
    ]
    server = category.get("server")
    server = server if isinstance(server, Mapping) else {}
    server_stats = [(str(key), value) for key, value in server.items() if _is_stats(value)]
    name = format_value(category.get("name", "unnamed"))
    if category.get("title"):
        name = f"{name} ({format_value(category['title'])})"
    return CategoryView(
        name=name,
        facts=key_values(category, skip=_CATEGORY_SKIP),
        stats=_stats_table(metrics),
        server_facts=key_values(server, skip=[key for key, _ in server_stats]),
        server_stats=_stats_table(server_stats) if server_stats else None,
    )


def _concurrency_table(levels: list[Mapping[str, Any]]) -> Table | None:
    if not levels:
        return None
    header: tuple[str, ...] = ("Users", "Requests", "Failures", "Throughput (tok/s)", "n")
    header += ("TTFT median (ms)", "TTFT p95 (ms)", "Total median (ms)", "Total p95 (ms)")
    rows = tuple(
        (
            format_value(level.get("users")),
            format_value(level.get("requests")),
            format_value(level.get("failures")),
            format_value(level.get("throughput_tps")),
            _stat(level.get("ttft_ms"), "count"),
            _stat(level.get("ttft_ms"), "median"),
            _stat(level.get("ttft_ms"), "p95"),
            _stat(level.get("total_ms"), "median"),
            _stat(level.get("total_ms"), "p95"),
        )
        for level in levels
    )
    return Table(header=header, rows=rows)


def benchmark_view(benchmark: Mapping[str, Any] | None) -> BenchmarkView | None:
    if not isinstance(benchmark, Mapping):
        return None
    return BenchmarkView(
        facts=key_values(benchmark, skip=_BENCH_PARTS),
        settings=key_values(benchmark.get("settings")),
        categories=tuple(_category_view(c) for c in _mappings(benchmark.get("categories"))),
        cold_start=Block(*split_records(benchmark.get("cold_start"))),
        concurrency=_concurrency_table(_mappings(benchmark.get("concurrency"))),
        crossover=Block(*split_records(benchmark.get("crossover"))),
        tco=Block(*split_records(benchmark.get("tco"))),
    )

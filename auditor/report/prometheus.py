"""Prometheus text exposition for node_exporter's textfile collector.

The nightly timer writes this next to node_exporter's textfile directory, so a
fleet's dashboards and alerts see every workstation's last audit (and benchmark)
without a new agent. Every metric is a gauge: each file is a fresh snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from auditor.report.escape import prometheus_label
from auditor.report.model import Report, summarize
from auditor.report.view import effective_status

# Percentiles of a finished benchmark are gauges, so they carry a `percentile` label: the
# `quantile` label belongs to summaries (promtool rejects it elsewhere).
PERCENTILES = (("50", "median"), ("95", "p95"), ("99", "p99"))
# benchmark category key -> metric name suffix (base units: seconds) and the factor to them
BENCH_METRICS = (
    ("ttft_ms", "ttft_seconds", "Time to first token", 1e-3),
    ("total_ms", "request_duration_seconds", "Total request time", 1e-3),
    ("tpot_ms", "time_per_output_token_seconds", "Time per output token after the first", 1e-3),
    ("itl_ms", "inter_token_latency_seconds", "Inter-token latency", 1e-3),
    ("decode_tps", "decode_tokens_per_second", "Decode rate", 1.0),
)


@dataclass(frozen=True)
class Sample:
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Family:
    name: str
    help: str
    samples: tuple[Sample, ...]


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    # Rounded so binary noise (36.199999999999996) does not reach dashboards.
    rounded = round(float(value), 6)
    return str(int(rounded)) if rounded.is_integer() else repr(rounded)


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{prometheus_label(value)}"' for key, value in labels.items())
    return "{" + inner + "}"


def _format(family: Family) -> Iterator[str]:
    help_text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
    yield f"# HELP {family.name} {help_text}"
    yield f"# TYPE {family.name} gauge"
    for sample in family.samples:
        yield f"{family.name}{_labels(sample.labels)} {_number(sample.value)}"


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def audit_families(report: Report) -> list[Family]:
    status = tuple(
        Sample(
            {
                "id": c.id,
                "family": c.family,
                "severity": c.severity,
                "status": effective_status(c),
            },
            1,
        )
        for c in report.controls
    )
    counts = summarize(report.controls)
    totals = tuple(
        Sample({"status": key}, value) for key, value in counts.items() if key != "total"
    )
    return [
        Family(
            "offgrid_audit_info",
            "The offgrid version that wrote this file (always 1).",
            (Sample({"version": report.tool_version, "host": report.host.hostname}, 1),),
        ),
        Family(
            "offgrid_control_status",
            "Result of each control in the last audit; status is pass, fail, error, "
            "not_applicable or waived (a failure with a valid waiver).",
            status,
        ),
        Family("offgrid_controls", "Controls of the last audit by status.", totals),
        Family(
            "offgrid_audit_timestamp_seconds",
            "When the last audit finished (Unix time).",
            (Sample({}, _timestamp(report.finished_at)),),
        ),
        Family(
            "offgrid_audit_incomplete",
            "Items the last audit could not read (0 means complete).",
            (Sample({}, len(report.incomplete)),),
        ),
    ]


def _percentile_samples(
    categories: list[Mapping[str, Any]], key: str, scale: float
) -> tuple[Sample, ...]:
    samples = []
    for category in categories:
        stats = category.get(key)
        if not isinstance(stats, Mapping):
            continue
        for percentile, stat in PERCENTILES:
            value = stats.get(stat)
            if isinstance(value, int | float) and not isinstance(value, bool):
                name = str(category.get("name", "unnamed"))
                samples.append(Sample({"category": name, "percentile": percentile}, value * scale))
    return tuple(samples)


def _concurrency_samples(levels: Any) -> tuple[Sample, ...]:
    if not isinstance(levels, list):
        return ()
    return tuple(
        Sample({"users": str(level["users"])}, level["throughput_tps"])
        for level in levels
        if isinstance(level, Mapping)
        and isinstance(level.get("throughput_tps"), int | float)
        and "users" in level
    )


def benchmark_families(benchmark: Mapping[str, Any]) -> list[Family]:
    raw = benchmark.get("categories")
    categories = [c for c in raw if isinstance(c, Mapping)] if isinstance(raw, list) else []
    families = [
        Family(f"offgrid_bench_{suffix}", f"{text} by task category and percentile.", samples)
        for key, suffix, text, scale in BENCH_METRICS
        if (samples := _percentile_samples(categories, key, scale))
    ]
    failures = tuple(
        Sample({"category": str(c.get("name", "unnamed"))}, c["failures"])
        for c in categories
        if isinstance(c.get("failures"), int)
    )
    if failures:
        families.append(
            Family("offgrid_bench_failures", "Failed requests by task category.", failures)
        )
    throughput = _concurrency_samples(benchmark.get("concurrency"))
    if throughput:
        families.append(
            Family(
                "offgrid_bench_throughput_tokens_per_second",
                "Aggregate output tokens per second by number of concurrent users.",
                throughput,
            )
        )
    return families


def render(report: Report) -> str:
    families = audit_families(report)
    if report.benchmark is not None:
        families.extend(benchmark_families(report.benchmark))
    lines = [line for family in families if family.samples for line in _format(family)]
    return "\n".join(lines) + "\n"

"""Prometheus text exposition for node_exporter's textfile collector.

The nightly timer writes this next to node_exporter's textfile directory, so a
fleet's dashboards and alerts see every workstation's last audit (and benchmark)
without a new agent. Every metric is a gauge: each file is a fresh snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from auditor.bench.results import BenchmarkSection, CategoryResult, Summary
from auditor.report.escape import prometheus_label
from auditor.report.model import Report
from auditor.verdicts import effective_status, summarize

# metric name suffix, help text, the category's summary
# Percentiles of a finished benchmark are gauges, so they carry a `percentile` label: the
# `quantile` label belongs to summaries (promtool rejects it elsewhere). Times in base units.
# metric name suffix, help text, the category's summary, the factor to base units
BENCH_METRICS: tuple[tuple[str, str, Callable[[CategoryResult], Summary | None], float], ...] = (
    ("ttft_seconds", "Time to first token", lambda c: c.ttft_ms, 1e-3),
    ("request_duration_seconds", "Total request time", lambda c: c.total_ms, 1e-3),
    ("time_per_output_token_seconds", "Time per output token after the first",
     lambda c: c.tpot_ms, 1e-3),
    ("inter_token_latency_seconds", "Inter-token latency", lambda c: c.itl_ms, 1e-3),
    ("decode_tokens_per_second", "Decode rate", lambda c: c.decode_tps, 1.0),
)  # fmt: skip


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
    categories: tuple[CategoryResult, ...],
    pick: Callable[[CategoryResult], Summary | None],
    scale: float,
) -> tuple[Sample, ...]:
    samples = []
    for category in categories:
        stats = pick(category)
        if stats is None:
            continue
        for percentile, value in (("50", stats.median), ("95", stats.p95), ("99", stats.p99)):
            samples.append(
                Sample({"category": category.name, "percentile": percentile}, value * scale)
            )
    return tuple(samples)


def offload_families(benchmark: BenchmarkSection) -> list[Family]:
    """The model's share on the GPU (absent when unknown), a 0/1 warning and the GPU count."""
    offload, families = benchmark.offload, []
    if offload is not None:
        labels = {"model": benchmark.model, "state": offload.state}
        if offload.ratio is not None:
            families.append(Family(
                "offgrid_bench_gpu_offload_ratio",
                "Share of the benchmarked model on the GPU (1 = all; 0 = CPU only).",
                (Sample(labels, offload.ratio),),
            ))  # fmt: skip
        families.append(Family(
            "offgrid_bench_gpu_offload_warning",
            "1 when the benchmarked model is not fully on a GPU that is there, or its "
            "offload could not be read.",
            (Sample(labels, 1.0 if offload.warning else 0.0),),
        ))  # fmt: skip
    if benchmark.gpu is not None:
        families.append(Family(
            "offgrid_bench_gpu_devices",
            "GPUs nvidia-smi listed while the benchmark ran (0: CPU only).",
            (Sample({}, float(len(benchmark.gpu.devices))),),
        ))  # fmt: skip
    return families


def benchmark_families(benchmark: BenchmarkSection) -> list[Family]:
    categories = benchmark.categories
    families = [
        Family(f"offgrid_bench_{suffix}", f"{text} by task category and percentile.", samples)
        for suffix, text, pick, scale in BENCH_METRICS
        if (samples := _percentile_samples(categories, pick, scale))
    ]
    failures = tuple(Sample({"category": c.name}, c.failures) for c in categories)
    if failures:
        families.append(
            Family("offgrid_bench_failures", "Failed requests by task category.", failures)
        )
    throughput = tuple(
        Sample({"users": str(level.users)}, level.throughput_tps)
        for level in benchmark.concurrency
        if level.throughput_tps is not None
    )
    if throughput:
        families.append(
            Family(
                "offgrid_bench_throughput_tokens_per_second",
                "Aggregate output tokens per second by number of concurrent users.",
                throughput,
            )
        )
    return families + offload_families(benchmark)


def render(report: Report) -> str:
    families = audit_families(report)
    if report.benchmark is not None:
        families.extend(benchmark_families(report.benchmark))
    lines = [line for family in families if family.samples for line in _format(family)]
    return "\n".join(lines) + "\n"

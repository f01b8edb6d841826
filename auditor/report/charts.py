"""Benchmark charts for the HTML report, as self-contained SVG text.

matplotlib is the optional 'charts' extra: it is imported inside `benchmark_charts`, and
this module refuses to import without it (ImportError naming matplotlib) so the HTML
renderer can say why a report has no charts. Output is deterministic — a fixed SVG hash
salt, no date in the metadata, glyphs drawn as paths — so the same results give the same
bytes and reports can be hashed and diffed.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from auditor.bench.results import (
    BenchmarkSection,
    CategoryResult,
    CloudFigures,
    Crossover,
    Samples,
    Summary,
)

if importlib.util.find_spec("matplotlib") is None:
    raise ImportError("matplotlib is needed for charts", name="matplotlib")

LOCAL_COLOR, CLOUD_COLOR = "#1f6feb", "#d29922"
LINE_STYLES = ("-", "--", "-.", ":")


@dataclass(frozen=True)
class Chart:
    title: str
    svg: str


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return buffer.getvalue()


SampleSeries = Callable[[Samples], Sequence[float | None]]


def _ok_samples(category: CategoryResult, pick: SampleSeries) -> list[float]:
    samples = category.samples
    if samples is None:
        return []
    values = pick(samples)
    flags = samples.ok or (True,) * len(values)
    return sorted(v for v, ok in zip(values, flags, strict=False) if ok and v is not None)


def _cdf_axis(
    axis: Any,
    categories: Sequence[CategoryResult],
    pick: SampleSeries,
    label: str,
) -> None:
    for category in categories:
        values = _ok_samples(category, pick)
        if values:
            fractions = [(i + 1) / len(values) for i in range(len(values))]
            axis.step(values, fractions, where="post", label=category.name)
    axis.set_xlabel(f"{label} (ms)")
    axis.set_ylabel("fraction of requests")
    axis.set_ylim(0, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right", fontsize=7)


def latency_cdf(figure_cls: Any, categories: Sequence[CategoryResult]) -> Chart:
    figure = figure_cls(figsize=(8, 3.2))
    ttft_axis, total_axis = figure.subplots(1, 2)
    _cdf_axis(ttft_axis, categories, lambda s: s.ttft_ms, "time to first token")
    _cdf_axis(total_axis, categories, lambda s: s.total_ms, "total time")
    return Chart("Latency CDF: time to first token and total time", _svg(figure))


def _median(block: Summary | None) -> float:
    return block.median if block is not None else 0.0


def per_category(figure_cls: Any, categories: Sequence[CategoryResult]) -> Chart:
    figure = figure_cls(figsize=(8, 3.2))
    ttft_axis, tps_axis = figure.subplots(1, 2)
    names = [c.name for c in categories]
    ttft = [_median(c.ttft_ms) for c in categories]
    p95 = [c.ttft_ms.p95 if c.ttft_ms else 0.0 for c in categories]
    ttft_axis.bar(names, ttft, color=LOCAL_COLOR, label="median")
    ttft_axis.scatter(names, p95, color="black", marker="_", s=200, label="P95", zorder=3)
    ttft_axis.set_ylabel("TTFT (ms)")
    ttft_axis.legend(fontsize=7)
    tps_axis.bar(names, [_median(c.decode_tps) for c in categories], color=LOCAL_COLOR)
    tps_axis.set_ylabel("decode tokens/s (median)")
    for axis in (ttft_axis, tps_axis):
        axis.grid(axis="y", alpha=0.3)
        axis.tick_params(axis="x", labelsize=8)
    return Chart("TTFT and decode rate per category", _svg(figure))


def _total(ttft_ms: float, tps: float, tokens: Sequence[float]) -> list[float]:
    return [ttft_ms + n * 1000.0 / tps for n in tokens]


def _cloud_band(axis: Any, cloud: CloudFigures, tokens: Sequence[float]) -> None:
    c_ttft, c_tps = cloud.ttft_ms, cloud.decode_tps
    best = _total(c_ttft.low, c_tps.high, tokens)
    worst = _total(c_ttft.high, c_tps.low, tokens)
    typical = _total((c_ttft.low + c_ttft.high) / 2, (c_tps.low + c_tps.high) / 2, tokens)
    axis.fill_between(tokens, best, worst, color=CLOUD_COLOR, alpha=0.2, label="cloud best-worst")
    axis.plot(tokens, typical, color=CLOUD_COLOR, label="cloud typical")


def _local_lines(axis: Any, crossover: Crossover, tokens: Sequence[float]) -> None:
    """Each category's own local line, or the pooled one when none was modelled."""
    for index, own in enumerate(crossover.categories):
        local = own.local
        axis.plot(
            tokens,
            _total(local.ttft_ms, local.decode_tps, tokens),
            color=LOCAL_COLOR,
            linestyle=LINE_STYLES[index % len(LINE_STYLES)],
            label=f"local: {own.category}",
        )
    if not crossover.categories:
        local = crossover.local
        axis.plot(
            tokens,
            _total(local.ttft_ms, local.decode_tps, tokens),
            color=LOCAL_COLOR,
            label="local (measured)",
        )


def _mark_crossovers(axis: Any, crossover: Crossover) -> None:
    marks = [(c.category, c.local, c.crossover_tokens.typical) for c in crossover.categories]
    if not marks:
        marks = [("pooled", crossover.local, crossover.crossover_tokens.typical)]
    for name, local, n in marks:
        if n:
            crossing = local.ttft_ms + n * 1000.0 / local.decode_tps
            axis.plot([n], [crossing], marker="o", color="black")
            axis.annotate(
                f"{name} ≈ {n:.0f}",
                (n, crossing),
                xytext=(5, -10),
                textcoords="offset points",
                fontsize=7,
            )


def crossover_chart(figure_cls: Any, crossover: Crossover) -> Chart:
    points = [c.crossover_tokens.typical for c in crossover.categories]
    points.append(crossover.crossover_tokens.typical)
    furthest = max((n for n in points if n), default=None)
    top = max(800.0, 2 * furthest) if furthest else 800.0
    tokens = [top * i / 100 for i in range(101)]
    figure = figure_cls(figsize=(8, 3.6))
    axis = figure.subplots()
    _cloud_band(axis, crossover.cloud, tokens)
    _local_lines(axis, crossover, tokens)
    _mark_crossovers(axis, crossover)
    axis.set_xlabel("output tokens")
    axis.set_ylabel("modelled total time (ms)")
    axis.grid(alpha=0.3)
    axis.legend(loc="upper left", fontsize=7)
    return Chart("Crossover: local vs cloud total time by output length", _svg(figure))


def benchmark_charts(benchmark: BenchmarkSection) -> list[Chart]:
    """Charts for a benchmark section."""
    import matplotlib  # noqa: PLC0415 - optional extra, imported only when charts are drawn
    from matplotlib.figure import Figure  # noqa: PLC0415

    categories = [c for c in benchmark.categories if c.ttft_ms]
    charts: list[Chart] = []
    with matplotlib.rc_context(
        {"svg.hashsalt": "offgrid", "svg.fonttype": "path", "font.size": 9.0}
    ):
        if categories:
            charts += [latency_cdf(Figure, categories), per_category(Figure, categories)]
        if benchmark.crossover is not None:
            charts.append(crossover_chart(Figure, benchmark.crossover))
    return charts

"""The self-contained HTML report a compliance reviewer opens in a browser."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from typing import Protocol, cast

from markupsafe import Markup

from auditor.bench.results import BenchmarkSection
from auditor.report import view
from auditor.report.model import Report
from auditor.report.templates import environment

TEMPLATE = "report.html.j2"
CHARTS_MISSING = (
    "Charts are not included: matplotlib is not installed here "
    "(install offgrid with the 'charts' extra to add them)."
)
CHARTS_UNAVAILABLE = "Charts are not included: this offgrid build has no chart support."
_BEFORE_SVG = re.compile(r"\A.*?(?=<svg\b)", re.DOTALL)


def inline_svg(svg: str) -> Markup:
    """An SVG document as an element to embed in HTML (XML prolog and DOCTYPE dropped)."""
    return Markup(_BEFORE_SVG.sub("", svg, count=1))  # noqa: S704 - SVG from our own chart code


class _Chart(Protocol):
    """auditor.report.charts.Chart, owned by the benchmark code."""

    @property
    def title(self) -> str: ...

    @property
    def svg(self) -> str: ...


ChartsFn = Callable[[BenchmarkSection], Sequence[_Chart]]


def _load_chart_function() -> ChartsFn:
    # Imported on demand: matplotlib is the optional 'charts' extra, absent on most
    # workstations, and the nightly audit must not need it.
    module = importlib.import_module("auditor.report.charts")
    return cast(ChartsFn, module.benchmark_charts)


def charts_for(benchmark: BenchmarkSection | None) -> tuple[list[tuple[str, Markup]], str]:
    """The benchmark's charts, or a one-line note saying why there are none."""
    if benchmark is None:
        return [], ""
    try:
        benchmark_charts = _load_chart_function()
    except ImportError as exc:
        missing_matplotlib = (exc.name or "").split(".")[0] == "matplotlib"
        return [], CHARTS_MISSING if missing_matplotlib else CHARTS_UNAVAILABLE
    try:
        charts = benchmark_charts(benchmark)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        # A malformed benchmark section must not cost the reviewer the whole report.
        return [], f"Charts could not be drawn from this benchmark section ({exc!r})."
    return [(chart.title, inline_svg(chart.svg)) for chart in charts], ""


def render(report: Report) -> str:
    charts, note = charts_for(report.benchmark)
    template = environment().get_template(TEMPLATE)
    return template.render(v=view.build(report), charts=charts, charts_note=note)

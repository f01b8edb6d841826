"""Percentiles and summaries, with the method named in every result.

`linear` is numpy's default (Hyndman & Fan type 7, what vLLM reports): the value at
rank h = (n - 1)·q/100, interpolated between its neighbours. `nearest-rank` is the
classic definition GuideLLM uses (numpy's `inverted_cdf`): the smallest value with at
least q % of the data at or below it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from auditor.bench.results import Summary

LINEAR = "linear"
NEAREST_RANK = "nearest-rank"
METHODS = (LINEAR, NEAREST_RANK)
DESCRIPTIONS = {
    LINEAR: "linear interpolation between closest ranks (numpy default, type 7)",
    NEAREST_RANK: "nearest rank (numpy inverted_cdf, type 1)",
}


def percentile(values: Sequence[float], q: float, method: str = LINEAR) -> float:
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    if method == LINEAR:
        return _linear(ordered, q)
    if method == NEAREST_RANK:
        rank = max(1, math.ceil(q / 100.0 * len(ordered)))
        return ordered[rank - 1]
    raise ValueError(f"unknown percentile method {method!r}")


def _linear(ordered: Sequence[float], q: float) -> float:
    h = (len(ordered) - 1) * q / 100.0
    lower = math.floor(h)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (h - lower) * (ordered[upper] - ordered[lower])


def summarize(values: Sequence[float], method: str = LINEAR) -> Summary | None:
    """median, p95, p99, mean, min, max and count; None when there is nothing to summarize."""
    if not values:
        return None
    return Summary(
        median=percentile(values, 50.0, method),
        p95=percentile(values, 95.0, method),
        p99=percentile(values, 99.0, method),
        mean=math.fsum(values) / len(values),
        min=min(values),
        max=max(values),
        count=len(values),
    )

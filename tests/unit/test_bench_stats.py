"""Percentiles against numpy on known and random data, both methods."""

from __future__ import annotations

import random

import numpy as np
import pytest

from auditor.bench.stats import LINEAR, NEAREST_RANK, percentile, summarize

KNOWN = [15.0, 20.0, 35.0, 40.0, 50.0]


@pytest.mark.parametrize(
    ("q", "expected"), [(0, 15.0), (40, 29.0), (50, 35.0), (95, 48.0), (100, 50.0)]
)
def test_linear_matches_hand_computed_values(q: float, expected: float) -> None:
    assert percentile(KNOWN, q, LINEAR) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("q", "expected"), [(5, 15.0), (30, 20.0), (40, 20.0), (50, 35.0), (100, 50.0)]
)
def test_nearest_rank_matches_the_textbook_definition(q: float, expected: float) -> None:
    assert percentile(KNOWN, q, NEAREST_RANK) == expected


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("q", [1, 25, 50, 90, 95, 99, 99.9])
def test_both_methods_agree_with_numpy(seed: int, q: float) -> None:
    rng = random.Random(seed)
    values = [rng.lognormvariate(4, 0.6) for _ in range(rng.randint(1, 250))]
    assert percentile(values, q, LINEAR) == pytest.approx(np.percentile(values, q, method="linear"))
    assert percentile(values, q, NEAREST_RANK) == pytest.approx(
        np.percentile(values, q, method="inverted_cdf")
    )


def test_summary_fields() -> None:
    summary = summarize([3.0, 1.0, 2.0, 10.0])
    assert summary is not None
    assert summary.median == pytest.approx(np.median([3, 1, 2, 10]))
    assert summary.p99 == pytest.approx(np.percentile([3, 1, 2, 10], 99))
    assert (summary.mean, summary.min, summary.max, summary.count) == (
        4.0,
        1.0,
        10.0,
        4,
    )
    assert summarize([]) is None


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    with pytest.raises(ValueError):
        percentile([1.0], 50, "midpoint")

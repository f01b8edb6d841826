"""Crossover output length and the seed's decision matrix, computed from measurements.

Each side is modelled as total_ms(n) = ttft_ms + n · 1000 / decode_tps for n output
tokens. Each category's local side is its own median TTFT and decode rate (its prompts,
and so its prefill, differ from the others'); the pooled side (medians over the
categories) serves the rows that belong to no category. Cloud figures come from a
benchmark section measured with this same suite against a cloud endpoint
(`offgrid bench --allow-remote … --output cloud.json`) or from a reference file:

    {"kind": "offgrid-cloud-reference", "label": "…", "source": "…",
     "ttft_ms": {"low": 180, "high": 600}, "decode_tps": {"low": 80, "high": 150}}

"typical" is the midpoint of each range; "best" pairs the low TTFT with the high rate,
"worst" the high TTFT with the low rate.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor import safeio
from auditor.bench.results import CategoryResult, CloudFigures, LocalFigures, Range, Scenarios
from auditor.errors import InputError

REFERENCE_KIND = "offgrid-cloud-reference"
MODEL = "total_ms(n) = ttft_ms + n * 1000 / decode_tps"


@dataclass(frozen=True)
class Side:
    ttft_ms: float
    decode_tps: float

    def total_ms(self, tokens: float) -> float:
        return self.ttft_ms + tokens * 1000.0 / self.decode_tps


@dataclass(frozen=True)
class CloudRange:
    label: str
    source: str
    ttft_low: float
    ttft_high: float
    tps_low: float
    tps_high: float

    @property
    def scenarios(self) -> dict[str, Side]:
        return {
            "best": Side(self.ttft_low, self.tps_high),
            "typical": Side(
                (self.ttft_low + self.ttft_high) / 2, (self.tps_low + self.tps_high) / 2
            ),
            "worst": Side(self.ttft_high, self.tps_low),
        }


def crossover_tokens(local: Side, cloud: Side) -> float | None:
    """Output length where both totals are equal; None when one side wins at every length."""
    slope = 1000.0 / local.decode_tps - 1000.0 / cloud.decode_tps
    if slope == 0:
        return None
    n = (cloud.ttft_ms - local.ttft_ms) / slope
    return n if n > 0 else None


def _range(values: Sequence[float], what: str) -> tuple[float, float]:
    if not values:
        raise InputError(f"cloud results have no {what} figures")
    return min(values), max(values)


# Milliseconds and tokens per second outside this range are not measurements (1e-320
# tokens/s would make every derived time infinite).
_SANE = (1e-6, 1e9)


def _positive(raw: Any, key: str, path: Path) -> float:
    if not isinstance(raw, int | float) or isinstance(raw, bool):
        raise InputError(f"{path}: {key} must be a positive number")
    if not _SANE[0] <= raw <= _SANE[1]:
        raise InputError(f"{path}: {key} must be a number from {_SANE[0]:g} to {_SANE[1]:g}")
    return float(raw)


def _from_reference(data: Mapping[str, Any], path: Path) -> CloudRange:
    try:
        ttft, tps = data["ttft_ms"], data["decode_tps"]
        values = [
            _positive(block[end], f"{name}.{end}", path)
            for name, block in (("ttft_ms", ttft), ("decode_tps", tps))
            for end in ("low", "high")
        ]
    except (KeyError, TypeError) as exc:
        raise InputError(f"{path}: needs ttft_ms.low/high and decode_tps.low/high") from exc
    if values[0] > values[1] or values[2] > values[3]:
        raise InputError(f"{path}: low must not exceed high")
    return CloudRange(str(data.get("label", path.name)), str(data.get("source", "")), *values)


def _medians(categories: Any, metric: str, path: Path) -> list[float]:
    if not isinstance(categories, list):
        raise InputError(f"{path}: categories: expected an array")
    values = []
    for index, category in enumerate(categories):
        block = category.get(metric) if isinstance(category, dict) else None
        if isinstance(block, dict):
            values.append(_positive(block.get("median"), f"categories[{index}].{metric}", path))
    return values


def _from_section(data: Mapping[str, Any], path: Path) -> CloudRange:
    categories = data.get("categories") or []
    ttfts = _medians(categories, "ttft_ms", path)
    rates = _medians(categories, "decode_tps", path)
    (t_lo, t_hi), (r_lo, r_hi) = _range(ttfts, "TTFT"), _range(rates, "decode rate")
    label = f"measured: {data.get('model')} at {data.get('endpoint')}"
    return CloudRange(label, f"offgrid bench results {path.name}", t_lo, t_hi, r_lo, r_hi)


def load_cloud(path: Path) -> CloudRange:
    data = safeio.load_json(path, safeio.REPORT_LIMIT, what="cloud reference")
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    if data.get("kind") == REFERENCE_KIND:
        return _from_reference(data, path)
    section = data.get("benchmark", data)  # a full report embeds the section
    if isinstance(section, dict) and "categories" in section:
        return _from_section(section, path)
    raise InputError(f"{path}: neither an {REFERENCE_KIND} file nor offgrid bench results")


def local_side(categories: Sequence[CategoryResult]) -> Side:
    """The pooled local side: medians of the categories' median TTFT and decode rate."""
    ttfts = [c.ttft_ms.median for c in categories if c.ttft_ms]
    rates = [c.decode_tps.median for c in categories if c.decode_tps]
    if not ttfts or not rates:
        raise InputError("local results have no TTFT or decode-rate figures for a crossover")
    return Side(statistics.median(ttfts), statistics.median(rates))


def category_side(category: CategoryResult, pooled: Side) -> tuple[Side, str] | None:
    """A category's own local side and what it rests on; None without a measured TTFT.

    A category without token counts has no decode rate of its own: the pooled one stands
    in, and the basis says so.
    """
    if category.ttft_ms is None:
        return None
    runs = f"{category.ttft_ms.count} runs"
    if category.decode_tps is None:
        basis = f"median TTFT of this category's {runs}; decode rate pooled (no token counts)"
        return Side(category.ttft_ms.median, pooled.decode_tps), basis
    basis = f"median TTFT and decode rate of this category's {runs}"
    return Side(category.ttft_ms.median, category.decode_tps.median), basis


def local_figures(side: Side, basis: str) -> LocalFigures:
    return LocalFigures(ttft_ms=side.ttft_ms, decode_tps=side.decode_tps, basis=basis)


def cloud_figures(cloud: CloudRange) -> CloudFigures:
    return CloudFigures(
        label=cloud.label,
        source=cloud.source,
        ttft_ms=Range(cloud.ttft_low, cloud.ttft_high),
        decode_tps=Range(cloud.tps_low, cloud.tps_high),
    )


def scenario_crossovers(local: Side, cloud: CloudRange) -> Scenarios:
    sides = cloud.scenarios
    return Scenarios(
        best=crossover_tokens(local, sides["best"]),
        typical=crossover_tokens(local, sides["typical"]),
        worst=crossover_tokens(local, sides["worst"]),
    )

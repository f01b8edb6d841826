"""`offgrid bench compare OLD NEW`: flag metrics that got worse by more than a threshold.

Medians and P95 per category, plus aggregate throughput per concurrency level. Lower is
better for times, higher for rates. Results from different suite versions are refused:
their prompts differ, so their numbers do not compare.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor import safeio
from auditor.errors import InputError

# (metric, statistic, True when higher is better)
CATEGORY_METRICS = (
    ("ttft_ms", "median", False),
    ("ttft_ms", "p95", False),
    ("total_ms", "median", False),
    ("tpot_ms", "median", False),
    ("decode_tps", "median", True),
)


@dataclass(frozen=True)
class Change:
    scope: str  # category name or "concurrency N users"
    metric: str
    old: float
    new: float
    higher_is_better: bool

    @property
    def worse_pct(self) -> float:
        """How much worse NEW is than OLD, in percent (negative: better)."""
        if self.old == 0:
            return 0.0
        delta = (self.old - self.new) if self.higher_is_better else (self.new - self.old)
        return delta / abs(self.old) * 100.0

    def describe(self) -> str:
        return (
            f"{self.scope} {self.metric}: {self.old:.2f} -> {self.new:.2f} "
            f"({self.worse_pct:+.1f}% worse)"
        )


def load_section(path: Path) -> dict[str, Any]:
    data = safeio.load_json(path, safeio.REPORT_LIMIT, what="cannot read benchmark results")
    section = data.get("benchmark", data) if isinstance(data, dict) else None
    if not isinstance(section, dict) or not isinstance(section.get("categories"), list):
        raise InputError(f"{path}: not offgrid bench results (no categories)")
    _check_shape(section, str(path))
    return section


def _check_shape(section: Mapping[str, Any], source: str) -> None:
    """The parts compare() reads, named with their path when they have the wrong shape."""
    safeio.table(section.get("suite", {}), "suite", source)
    for index, category in enumerate(section["categories"]):
        where = f"categories[{index}]"
        safeio.text(safeio.table(category, where, source), "name", where, source, "")
    for index, level in enumerate(
        safeio.array(section.get("concurrency") or [], "concurrency", source)
    ):
        where = f"concurrency[{index}]"
        users = safeio.table(level, where, source).get("users")
        if isinstance(users, bool) or not isinstance(users, int):
            raise InputError(f"{source}: {where}.users: expected an integer")


def _stat(block: Any, stat: str) -> float | None:
    value = block.get(stat) if isinstance(block, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if abs(value) < 1e300 else None


def _category_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    changes = []
    for metric, stat, higher in CATEGORY_METRICS:
        before, after = _stat(old.get(metric), stat), _stat(new.get(metric), stat)
        if before is not None and after is not None:
            changes.append(Change(str(new["name"]), f"{metric}.{stat}", before, after, higher))
    return changes


def _concurrency_changes(old: list[Any], new: list[Any]) -> list[Change]:
    before = {c["users"]: c.get("throughput_tps") for c in old}
    changes = []
    for level in new:
        old_tps, new_tps = before.get(level["users"]), level.get("throughput_tps")
        numbers = all(isinstance(v, int | float) and 0 < v < 1e300 for v in (old_tps, new_tps))
        if numbers and old_tps and new_tps:
            changes.append(
                Change(
                    f"concurrency {level['users']} users",
                    "throughput_tps",
                    float(old_tps),
                    float(new_tps),
                    True,
                )
            )
    return changes


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    old_suite, new_suite = old.get("suite", {}), new.get("suite", {})
    if old_suite.get("version") != new_suite.get("version"):
        raise InputError(
            f"suite versions differ ({old_suite.get('version')} vs {new_suite.get('version')}): "
            "the prompts are not the same, so the figures do not compare"
        )
    old_by_name = {c["name"]: c for c in old["categories"]}
    changes = []
    for category in new["categories"]:
        if category["name"] in old_by_name:
            changes += _category_changes(old_by_name[category["name"]], category)
    return changes + _concurrency_changes(
        old.get("concurrency") or [], new.get("concurrency") or []
    )


def regressions(changes: list[Change], threshold_pct: float) -> list[Change]:
    return [c for c in changes if c.worse_pct > threshold_pct]

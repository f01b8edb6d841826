"""The seed's decision matrix (local / cloud / hybrid per use case), filled from numbers.

Coding categories compare modelled totals at the bottom and top of the category's
output range, against the typical cloud: local faster at both ends → Local, slower at
both → Cloud, otherwise Hybrid (local below the crossover, cloud above). The other rows
rest on facts the run established (where the prompts went, the concurrency sweep).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from auditor.bench.crossover import MODEL, CloudRange, Side, crossover_tokens, local_side

CODING_ROWS = {
    "autocomplete": "Autocomplete (inline)",
    "function": "Function generation",
    "refactor": "Refactoring",
    "explain": "Code explanation",
}
TEAM_SIZE = 10


def _fmt_ms(value: float) -> str:
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def coding_row(name: str, target: Sequence[int], local: Side, cloud: CloudRange) -> dict[str, Any]:
    typical = cloud.scenarios["typical"]
    low, high = target
    wins = [local.total_ms(n) <= typical.total_ms(n) for n in (low, high)]
    verdict = "Local" if all(wins) else "Cloud" if not any(wins) else "Hybrid"
    cross = crossover_tokens(local, typical)
    cross_text = f"crossover at {cross:.0f} tokens" if cross else "no crossover"
    rationale = (
        f"at {low}-{high} output tokens local takes {_fmt_ms(local.total_ms(low))}-"
        f"{_fmt_ms(local.total_ms(high))}, typical cloud {_fmt_ms(typical.total_ms(low))}-"
        f"{_fmt_ms(typical.total_ms(high))} ({cross_text})"
    )
    return {
        "use_case": CODING_ROWS.get(name, name),
        "category": name,
        "recommendation": verdict,
        "rationale": rationale,
        "figures": {
            "local_total_ms": [local.total_ms(low), local.total_ms(high)],
            "cloud_total_ms": [typical.total_ms(low), typical.total_ms(high)],
            "crossover_tokens": cross,
        },
    }


def privacy_rows(endpoint_loopback: bool, local: Side) -> list[dict[str, Any]]:
    where = (
        "every prompt went to a loopback endpoint and never left this machine"
        if endpoint_loopback
        else "this run used a remote endpoint (--allow-remote), so only a loopback engine keeps "
        "code on the machine"
    )
    return [
        {
            "use_case": "Security-sensitive code",
            "category": None,
            "recommendation": "Local",
            "rationale": f"{where}; a cloud call sends the code off it",
            "figures": {},
        },
        {
            "use_case": "Offline or travel",
            "category": None,
            "recommendation": "Local",
            "rationale": f"no cloud without connectivity; local answers with a "
            f"{_fmt_ms(local.ttft_ms)} median TTFT and {local.decode_tps:.0f} tok/s",
            "figures": {"local_ttft_ms": local.ttft_ms, "local_decode_tps": local.decode_tps},
        },
    ]


def team_row(concurrency: Sequence[Mapping[str, Any]], cloud: CloudRange) -> dict[str, Any]:
    row: dict[str, Any] = {
        "use_case": f"Teams greater than {TEAM_SIZE} developers",
        "category": None,
        "figures": {},
    }
    measured = [c for c in concurrency if c.get("throughput_tps")]
    if not measured:
        row["recommendation"] = None
        row["rationale"] = "no concurrency sweep was measured (run with --concurrency 1,2,4)"
        return row
    best = max(measured, key=lambda c: c["throughput_tps"])
    per_user = best["throughput_tps"] / TEAM_SIZE
    typical = cloud.scenarios["typical"].decode_tps
    row["recommendation"] = "Local" if per_user >= typical else "Hybrid"
    row["rationale"] = (
        f"peak aggregate {best['throughput_tps']:.0f} tok/s (at {best['users']} concurrent users) "
        f"shared by {TEAM_SIZE} developers is {per_user:.0f} tok/s each "
        f"vs {typical:.0f} tok/s typical cloud"
    )
    row["figures"] = {"peak_throughput_tps": best["throughput_tps"], "per_user_tps": per_user}
    return row


def crossover_section(
    categories: Sequence[Mapping[str, Any]],
    cloud: CloudRange,
    concurrency: Sequence[Mapping[str, Any]],
    endpoint_loopback: bool,
) -> dict[str, Any]:
    local = local_side(categories)
    scenarios = cloud.scenarios
    matrix = [
        coding_row(c["name"], c["target_tokens"], local, cloud)
        for c in categories
        if c.get("ttft_ms")
    ]
    matrix += privacy_rows(endpoint_loopback, local)
    matrix.append(team_row(concurrency, cloud))
    return {
        "model": MODEL,
        "local": {
            "ttft_ms": local.ttft_ms,
            "decode_tps": local.decode_tps,
            "basis": "median over the measured categories",
        },
        "cloud": {
            "label": cloud.label,
            "source": cloud.source,
            "ttft_ms": {"low": cloud.ttft_low, "high": cloud.ttft_high},
            "decode_tps": {"low": cloud.tps_low, "high": cloud.tps_high},
        },
        "crossover_tokens": {
            name: crossover_tokens(local, side) for name, side in scenarios.items()
        },
        "local_faster_below_crossover": local.ttft_ms < scenarios["typical"].ttft_ms,
        "decision_matrix": matrix,
    }

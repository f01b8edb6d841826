"""The seed's decision matrix (local / cloud / hybrid per use case), filled from numbers.

Each coding category is modelled with its own local figures (median TTFT and decode
rate of its own runs) and compared with the typical cloud at the bottom and top of the
category's output range: local faster at both ends → Local, slower at both → Cloud,
otherwise Hybrid (local below the crossover, cloud above). Each row carries the
figures it was computed from. The other rows rest on facts the run established (where
the prompts went, the concurrency sweep) and on the pooled local figures.
"""

from __future__ import annotations

from collections.abc import Sequence

from auditor.bench.crossover import (
    MODEL,
    CloudRange,
    Side,
    category_side,
    cloud_figures,
    crossover_tokens,
    local_figures,
    local_side,
    scenario_crossovers,
)
from auditor.bench.results import (
    CategoryCrossover,
    CategoryResult,
    Crossover,
    DecisionRow,
    Level,
    RowFigures,
)

CODING_ROWS = {
    "autocomplete": "Autocomplete (inline)",
    "function": "Function generation",
    "refactor": "Refactoring",
    "explain": "Code explanation",
}
TEAM_SIZE = 10
POOLED_BASIS = "median over the measured categories"


def _fmt_ms(value: float) -> str:
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def coding_row(name: str, target: tuple[int, int], local: Side, cloud: CloudRange) -> DecisionRow:
    """One category's row, from that category's own local side."""
    typical = cloud.scenarios["typical"]
    low, high = target
    wins = [local.total_ms(n) <= typical.total_ms(n) for n in (low, high)]
    verdict = "Local" if all(wins) else "Cloud" if not any(wins) else "Hybrid"
    cross = crossover_tokens(local, typical)
    cross_text = f"crossover at {cross:.0f} tokens" if cross else "no crossover"
    rationale = (
        f"with this category's local TTFT {_fmt_ms(local.ttft_ms)} and "
        f"{local.decode_tps:.0f} tok/s, at {low}-{high} output tokens local takes "
        f"{_fmt_ms(local.total_ms(low))}-{_fmt_ms(local.total_ms(high))}, typical cloud "
        f"{_fmt_ms(typical.total_ms(low))}-{_fmt_ms(typical.total_ms(high))} ({cross_text})"
    )
    figures = RowFigures(
        local_ttft_ms=local.ttft_ms,
        local_decode_tps=local.decode_tps,
        local_total_ms=(local.total_ms(low), local.total_ms(high)),
        cloud_total_ms=(typical.total_ms(low), typical.total_ms(high)),
        crossover_tokens=cross,
    )
    return DecisionRow(
        use_case=CODING_ROWS.get(name, name),
        category=name,
        recommendation=verdict,
        rationale=rationale,
        figures=figures,
    )


def privacy_rows(endpoint_loopback: bool, local: Side) -> list[DecisionRow]:
    where = (
        "every prompt went to a loopback endpoint and never left this machine"
        if endpoint_loopback
        else "this run used a remote endpoint (--allow-remote), so only a loopback engine keeps "
        "code on the machine"
    )
    return [
        DecisionRow(
            use_case="Security-sensitive code",
            recommendation="Local",
            rationale=f"{where}; a cloud call sends the code off it",
        ),
        DecisionRow(
            use_case="Offline or travel",
            recommendation="Local",
            rationale=f"no cloud without connectivity; local answers with a "
            f"{_fmt_ms(local.ttft_ms)} median TTFT and {local.decode_tps:.0f} tok/s",
            figures=RowFigures(local_ttft_ms=local.ttft_ms, local_decode_tps=local.decode_tps),
        ),
    ]


def team_row(concurrency: Sequence[Level], cloud: CloudRange) -> DecisionRow:
    use_case = f"Teams greater than {TEAM_SIZE} developers"
    measured = [(c, c.throughput_tps) for c in concurrency if c.throughput_tps]
    if not measured:
        return DecisionRow(
            use_case=use_case,
            recommendation=None,
            rationale="no concurrency sweep was measured (run with --concurrency 1,2,4)",
        )
    best, peak = max(measured, key=lambda pair: pair[1])
    per_user = peak / TEAM_SIZE
    typical = cloud.scenarios["typical"].decode_tps
    return DecisionRow(
        use_case=use_case,
        recommendation="Local" if per_user >= typical else "Hybrid",
        rationale=(
            f"peak aggregate {peak:.0f} tok/s (at {best.users} concurrent users) "
            f"shared by {TEAM_SIZE} developers is {per_user:.0f} tok/s each "
            f"vs {typical:.0f} tok/s typical cloud"
        ),
        figures=RowFigures(peak_throughput_tps=peak, per_user_tps=per_user),
    )


def category_crossovers(
    categories: Sequence[CategoryResult], pooled: Side, cloud: CloudRange
) -> list[tuple[CategoryCrossover, DecisionRow]]:
    """Each measured category's own crossover and decision-matrix row."""
    out = []
    for category in categories:
        own = category_side(category, pooled)
        if own is None:
            continue
        side, basis = own
        crossover = CategoryCrossover(
            category=category.name,
            target_tokens=category.target_tokens,
            local=local_figures(side, basis),
            crossover_tokens=scenario_crossovers(side, cloud),
        )
        out.append((crossover, coding_row(category.name, category.target_tokens, side, cloud)))
    return out


def crossover_section(
    categories: Sequence[CategoryResult],
    cloud: CloudRange,
    concurrency: Sequence[Level],
    endpoint_loopback: bool,
) -> Crossover:
    pooled = local_side(categories)
    per_category = category_crossovers(categories, pooled, cloud)
    matrix = [row for _, row in per_category]
    matrix += privacy_rows(endpoint_loopback, pooled)
    matrix.append(team_row(concurrency, cloud))
    return Crossover(
        model=MODEL,
        local=local_figures(pooled, POOLED_BASIS),
        cloud=cloud_figures(cloud),
        crossover_tokens=scenario_crossovers(pooled, cloud),
        local_faster_below_crossover=pooled.ttft_ms < cloud.scenarios["typical"].ttft_ms,
        decision_matrix=tuple(matrix),
        categories=tuple(crossover for crossover, _ in per_category),
    )

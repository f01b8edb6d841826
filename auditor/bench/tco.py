"""Total cost of ownership and break-even months from a user-supplied price file.

The price file (TOML) holds the hardware cost, its power draw and hours of use, the
electricity price, the cloud price per million input/output tokens, and per category the
calls per day with the input/output tokens of a call. Break-even = hardware cost /
(monthly cloud spend avoided - monthly electricity). The hybrid variant avoids only the
spend of categories the decision matrix sends to Local.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor import safeio
from auditor.bench.results import Hybrid, Tco
from auditor.errors import InputError


@dataclass(frozen=True)
class Workload:
    category: str
    calls_per_day: float
    input_tokens: float
    output_tokens: float


@dataclass(frozen=True)
class Prices:
    label: str
    currency: str
    days_per_month: float
    hardware_cost: float
    watts: float
    hours_per_day: float
    price_per_kwh: float
    input_per_million: float
    output_per_million: float
    workloads: tuple[Workload, ...]


def _workloads(raw: Any, source: str) -> tuple[Workload, ...]:
    if raw is None:
        raise InputError(f"{source}: needs at least one [[workload]] table")
    items = safeio.array(raw, "workload", source)
    if not items:
        raise InputError(f"{source}: needs at least one [[workload]] table")
    workloads = []
    for index, item in enumerate(items):
        where = f"workload[{index}]"
        table = safeio.table(item, where, source)
        workloads.append(
            Workload(
                safeio.text(table, "category", where, source, ""),
                safeio.number(table, "calls_per_day", where, source),
                safeio.number(table, "input_tokens", where, source),
                safeio.number(table, "output_tokens", where, source),
            )
        )
    return tuple(workloads)


def _section(raw: Mapping[str, Any], name: str, source: str) -> Mapping[str, Any]:
    if name not in raw:
        raise InputError(f"{source}: missing [{name}] table")
    return safeio.table(raw[name], name, source)


def load_prices(path: Path) -> Prices:
    """The price file; a missing, malformed or wrong-shaped one is an InputError naming the key."""
    source = f"price file {path}"
    raw = safeio.load_toml(path, what="price file")
    hardware, power, cloud = (
        _section(raw, name, source) for name in ("hardware", "power", "cloud")
    )
    return Prices(
        label=safeio.text(raw, "label", "", source, path.name),
        currency=safeio.text(raw, "currency", "", source, "USD"),
        days_per_month=safeio.number(raw, "days_per_month", "", source, default=30.0),
        hardware_cost=safeio.number(hardware, "cost", "hardware", source),
        watts=safeio.number(power, "watts", "power", source),
        hours_per_day=safeio.number(power, "hours_per_day", "power", source),
        price_per_kwh=safeio.number(power, "price_per_kwh", "power", source),
        input_per_million=safeio.number(cloud, "input_per_million", "cloud", source),
        output_per_million=safeio.number(cloud, "output_per_million", "cloud", source),
        workloads=_workloads(raw.get("workload"), source),
    )


def monthly_cloud_cost(prices: Prices, workload: Workload) -> float:
    per_call = (
        workload.input_tokens * prices.input_per_million
        + workload.output_tokens * prices.output_per_million
    ) / 1e6
    return per_call * workload.calls_per_day * prices.days_per_month


def monthly_power(prices: Prices) -> tuple[float, float]:
    """(kWh per month, cost per month) of running the workstation's inference load."""
    kwh = prices.watts / 1000.0 * prices.hours_per_day * prices.days_per_month
    return kwh, kwh * prices.price_per_kwh


def break_even(hardware_cost: float, avoided: float, power_cost: float) -> float | None:
    saving = avoided - power_cost
    return hardware_cost / saving if saving > 0 else None


def tco_section(prices: Prices, local_categories: Sequence[str] | None) -> Tco:
    per_category = {w.category: monthly_cloud_cost(prices, w) for w in prices.workloads}
    cloud_total = sum(per_category.values())
    kwh, power_cost = monthly_power(prices)
    hybrid = None
    if local_categories is not None:
        avoided = sum(cost for name, cost in per_category.items() if name in local_categories)
        hybrid = Hybrid(
            local_categories=tuple(sorted(local_categories)),
            cloud_cost_avoided_per_month=avoided,
            share_of_cloud_spend_avoided=avoided / cloud_total if cloud_total else None,
            break_even_months=break_even(prices.hardware_cost, avoided, power_cost),
        )
    return Tco(
        label=prices.label,
        currency=prices.currency,
        days_per_month=prices.days_per_month,
        hardware_cost=prices.hardware_cost,
        power_kwh_per_month=kwh,
        power_cost_per_month=power_cost,
        cloud_cost_per_month=per_category,
        cloud_cost_per_month_total=cloud_total,
        cloud_cost_per_year_total=cloud_total * 12,
        break_even_months=break_even(prices.hardware_cost, cloud_total, power_cost),
        hybrid=hybrid,
    )

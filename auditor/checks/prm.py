"""OG-PRM: the parameters the running engine serves its models with, against the lock.

The bundle pins each model with its Modelfile parameters (num_ctx, num_gpu, temperature);
writing them into a params layer does not show that the running engine uses them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from auditor.checks._common import require_engine
from auditor.checks.interface import check
from auditor.inventory.interface import Facts, ServedModel
from auditor.verdicts import CannotEvaluate, DoesNotApply, Finding, Status, finding

COMPARED = ("num_ctx", "num_gpu", "temperature")


def _served_values(model: ServedModel) -> dict[str, float | None]:
    return {
        "num_ctx": model.num_ctx,
        "num_gpu": model.num_gpu,
        "temperature": model.temperature,
    }


def _as_number(value: object) -> float | None:
    try:
        return float(str(value))
    except ValueError:
        return None


def _offload(model: ServedModel) -> str:
    if model.size is None or model.size_vram is None or model.size <= 0:
        return "not stated"
    share = model.size_vram / model.size
    note = "" if share >= 1 else " (not fully on the GPU: generation runs partly on the CPU)"
    return f"{share:.0%} on the GPU ({model.size_vram} of {model.size} bytes){note}"


def _compare(
    model: ServedModel, pinned: Mapping[str, object]
) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """(mismatches, parameters the engine does not state, evidence) for one model."""
    served = _served_values(model)
    mismatched, unstated, evidence = [], [], []
    for key in COMPARED:
        if key not in pinned:
            continue
        want, got = _as_number(pinned[key]), served[key]
        evidence.append((f"{model.name} {key}", f"lock {pinned[key]}, engine {got}"))
        if got is None:
            unstated.append(f"{model.name} {key}")
        elif want is None or not math.isclose(float(got), want, rel_tol=1e-6):  # float32 in JSON
            mismatched.append(f"{model.name} {key} {got} (lock: {pinned[key]})")
    evidence.append((f"{model.name} offload", _offload(model)))
    evidence.append((f"{model.name} source", model.source))
    return mismatched, unstated, evidence


@check("OG-PRM-01")
def served_with_pinned_parameters(facts: Facts) -> Finding:
    require_engine(facts, running=True)
    served = facts.served
    if served is None:
        raise CannotEvaluate("the running engine was not asked which models it serves")
    if served.error:
        raise CannotEvaluate(f"cannot read the served models: {served.error}")
    if not served.models:
        raise DoesNotApply("no model is loaded: there are no served parameters to compare")
    compared = [(m, served.pinned[m.name]) for m in served.models if m.name in served.pinned]
    if not compared:
        names = ", ".join(m.name for m in served.models)
        raise DoesNotApply(f"no loaded model ({names}) has Modelfile parameters in the lock")
    mismatched, unstated, evidence = [], [], []
    for model, pinned in compared:
        bad, missing, more = _compare(model, pinned)
        mismatched += bad
        unstated += missing
        evidence += more
    if mismatched:
        return finding(
            Status.FAIL, "served with other parameters: " + "; ".join(mismatched), evidence
        )
    checked = sum(1 for _, p in compared for k in COMPARED if k in p) - len(unstated)
    if checked == 0:
        return finding(Status.ERROR, "the engine states none of the pinned parameters", evidence)
    note = f" ({', '.join(unstated)}: not stated by the engine)" if unstated else ""
    return finding(
        Status.PASS,
        f"{len(compared)} loaded model(s) served with the lock's parameters{note}",
        evidence,
    )

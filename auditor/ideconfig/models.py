"""Which local model serves autocomplete and which serves chat and edit.

With benchmark results (`offgrid bench … --cloud-reference`), the choice follows the
measured crossover: for each role, the model whose decision-matrix rows for that role's
categories are best (Local before Hybrid before Cloud), then fastest (the local total time
at the top of the category's output range). Autocomplete is judged on the autocomplete
category; chat and edit on function generation, refactoring and explanation. Only local
models are handed out: a row that says the cloud would be faster is reported as such, not
followed. Without results, the lock's pinned models are used: one model serves every
role; with several, the smallest serves autocomplete (latency) and the largest chat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from auditor.bench.compare import load_section
from auditor.bench.results import BenchmarkSection, DecisionRow
from auditor.errors import InputError
from auditor.models.lockfile import Lock
from auditor.report.bench_json import benchmark_from_json

ROLE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "autocomplete": ("autocomplete",),
    "chat": ("function", "refactor", "explain"),
}
_RANK = {"Local": 0, "Hybrid": 1, "Cloud": 2}
OLLAMA_PREFIX = "registry.ollama.ai/library/"


@dataclass(frozen=True)
class RoleChoice:
    role: str  # "autocomplete" or "chat" (chat also serves edit and apply)
    model: str
    basis: str  # why, in one sentence


@dataclass(frozen=True)
class ModelPlan:
    source: str  # "measured crossover" or "lock"
    autocomplete: RoleChoice
    chat: RoleChoice


@dataclass(frozen=True)
class Measured:
    path: Path
    section: BenchmarkSection


def short_name(name: str) -> str:
    """A model name as clients send it (Ollama's default registry prefix dropped)."""
    return name.removeprefix(OLLAMA_PREFIX)


def load_measured(paths: Sequence[Path]) -> list[Measured]:
    measured = []
    for path in paths:
        section = benchmark_from_json(load_section(path))
        if section.crossover is None:
            raise InputError(
                f"{path}: the results have no crossover; run offgrid bench with "
                "--cloud-reference so the decision matrix is measured"
            )
        measured.append(Measured(path, section))
    return measured


def _rows(measured: Measured, role: str) -> list[DecisionRow]:
    crossover = measured.section.crossover
    rows = crossover.decision_matrix if crossover else ()
    return [r for r in rows if r.category in ROLE_CATEGORIES[role]]


def _score(rows: list[DecisionRow]) -> tuple[float, float]:
    ranks = [_RANK.get(r.recommendation or "", 3) for r in rows]
    totals = [r.figures.local_total_ms[1] for r in rows if r.figures.local_total_ms]
    return sum(ranks) / len(ranks), sum(totals) / len(totals) if totals else float("inf")


def _basis(measured: Measured, rows: list[DecisionRow]) -> str:
    verdicts = ", ".join(f"{r.use_case}: {r.recommendation or 'not measured'}" for r in rows)
    text = f"measured crossover in {measured.path} ({verdicts})"
    if any(r.recommendation == "Cloud" for r in rows):
        text += "; the cloud reference would be faster there, and only local models are handed out"
    return text


def measured_choice(measured: Sequence[Measured], role: str) -> RoleChoice:
    candidates = [(m, rows) for m in measured if (rows := _rows(m, role))]
    if not candidates:
        wanted = " or ".join(ROLE_CATEGORIES[role])
        raise InputError(f"no benchmark result measured the {wanted} category for {role}")
    best, rows = min(candidates, key=lambda c: _score(c[1]))
    return RoleChoice(role, short_name(best.section.model), _basis(best, rows))


def _lock_models(lock: Lock, api: str) -> list[tuple[str, int]]:
    if api == "ollama":
        return [(short_name(m.name), sum(b.size for b in m.blobs)) for m in lock.models]
    return [(g.name, g.size) for g in lock.gguf]


def lock_plan(lock: Lock, api: str, source: str) -> ModelPlan:
    models = _lock_models(lock, api)
    if not models:
        kind = "Ollama models" if api == "ollama" else "GGUF models"
        raise InputError(f"{source}: the lock pins no {kind} for --api {api}")
    small = min(models, key=lambda m: (m[1], m[0]))[0]
    large = max(models, key=lambda m: (m[1], m[0]))[0]
    if len(models) == 1:
        why = f"the one model pinned in {source} (no measurement given)"
        return ModelPlan(
            "lock", RoleChoice("autocomplete", small, why), RoleChoice("chat", small, why)
        )
    return ModelPlan(
        "lock",
        RoleChoice(
            "autocomplete", small, f"the smallest model pinned in {source} (no measurement)"
        ),
        RoleChoice("chat", large, f"the largest model pinned in {source} (no measurement)"),
    )


def measured_plan(measured: Sequence[Measured], lock: Lock | None, api: str) -> ModelPlan:
    if lock is not None:
        pinned = {name for name, _ in _lock_models(lock, api)}
        for item in measured:
            if short_name(item.section.model) not in pinned:
                raise InputError(
                    f"{item.path}: model {item.section.model!r} is not pinned in the lock"
                )
    return ModelPlan(
        "measured crossover",
        measured_choice(measured, "autocomplete"),
        measured_choice(measured, "chat"),
    )

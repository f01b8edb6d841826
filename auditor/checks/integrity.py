"""OG-INT: the engine and every model match the lock file; nothing unpinned is in the store.

All three read one verification, collected with the other facts (Facts.integrity).
Without a lock file configured they are not_applicable: there is nothing to compare with.
"""

from __future__ import annotations

from collections.abc import Iterable

from auditor.checks.interface import check
from auditor.inventory.interface import Facts
from auditor.models.integrity import IntegrityRun
from auditor.models.pins import BinaryCheck
from auditor.models.verify import Problem, StoreReport
from auditor.verdicts import CannotEvaluate, DoesNotApply, Finding, Status, finding

NO_LOCK = "no lock file configured (--lock): nothing to compare the engine and models with"
_MAX_EVIDENCE = 25  # findings listed one by one; the rest are counted


def _integrity(facts: Facts) -> IntegrityRun:
    run = facts.integrity
    if run is None:
        raise DoesNotApply(NO_LOCK)
    if run.error:
        raise CannotEvaluate(
            f"the lock file cannot be used: {run.error}", [("lock", run.lock_path)]
        )
    return run


def _base_evidence(run: IntegrityRun) -> list[tuple[str, str]]:
    evidence = [("lock", f"{run.lock_path} (sha256 {run.lock_sha256})")]
    if run.stats is not None:
        stats = run.stats
        evidence.append(("mode", f"{stats.mode}: {stats.mode_reason}"))
        evidence.append(
            (
                "hashing",
                f"{stats.blobs_hashed} hashed ({stats.bytes_hashed} bytes), "
                f"{stats.blobs_from_cache} from the verified cache, "
                f"{stats.duration_s:.2f} s",
            )
        )
    return evidence


def _problem_evidence(problems: Iterable[Problem]) -> list[tuple[str, str]]:
    listed = list(problems)
    evidence = [(p.kind.value, f"{p.path}: {p.detail}") for p in listed[:_MAX_EVIDENCE]]
    if len(listed) > _MAX_EVIDENCE:
        evidence.append(("more", f"{len(listed) - _MAX_EVIDENCE} further findings"))
    return evidence


def _describe(file: BinaryCheck) -> str:
    pinned = file.pinned_sha256 or "nothing (not in the lock)"
    error = f" ({file.error})" if file.error else ""
    return f"{file.path}: sha256 {file.sha256 or '-'}, pinned {pinned}{error}"


@check("OG-INT-01")
def engine_binary_pinned(facts: Facts) -> Finding:
    run = _integrity(facts)
    evidence = _base_evidence(run)
    engine = run.engine
    if engine is None:
        status = Status.ERROR if facts.engine is None else Status.FAIL
        return finding(status, run.engine_note, evidence)
    evidence += [("file", _describe(f)) for f in engine.files]
    if engine.error:
        return finding(Status.ERROR, engine.error, evidence)
    unpinned = [f.path for f in engine.files if f.pinned_sha256 is None]
    changed = [f.path for f in engine.files if f.pinned_sha256 is not None and not f.ok]
    if changed or unpinned:
        parts = [f"differs from its pin: {', '.join(changed)}"] if changed else []
        if unpinned:
            parts.append(
                f"not pinned in the lock (offgrid bundle add-engine records it): "
                f"{', '.join(unpinned)}"
            )
        return finding(Status.FAIL, f"{engine.name} " + "; ".join(parts), evidence)
    return finding(
        Status.PASS,
        f"{engine.name} {engine.version}: {len(engine.files)} file(s) match the lock",
        evidence,
    )


def _store(facts: Facts) -> tuple[StoreReport, list[tuple[str, str]]]:
    """The verified store and the evidence every store control starts with."""
    run = _integrity(facts)
    evidence = _base_evidence(run)
    if run.store is None:
        raise CannotEvaluate(run.store_error or "no model store", evidence)
    evidence.append(("store", f"{run.store.root} ({run.store.layout} layout)"))
    return run.store, evidence


@check("OG-INT-02")
def models_match_lock(facts: Facts) -> Finding:
    store, evidence = _store(facts)
    items = store.items
    failed = [i for i in items if i.status == "failed"]
    unreadable = [i for i in items if i.status == "unreadable"]
    evidence += _problem_evidence(p for i in items for p in i.problems)
    if failed:
        names = ", ".join(i.name for i in failed)
        summary = f"{len(failed)} pinned model(s) differ from the lock: {names}"
        return finding(Status.FAIL, summary, evidence)
    if unreadable:
        names = ", ".join(i.name for i in unreadable)
        return finding(Status.ERROR, f"could not read every blob of: {names}", evidence)
    if not items:
        return finding(Status.PASS, "the lock pins no model for this store", evidence)
    summary = f"{len(items)} pinned model(s) match the lock by size and sha256"
    return finding(Status.PASS, summary, evidence)


@check("OG-INT-03")
def no_unpinned_models(facts: Facts) -> Finding:
    store, evidence = _store(facts)
    if store.unpinned:
        evidence += _problem_evidence(store.unpinned)
        summary = f"{len(store.unpinned)} model(s) or blob(s) in the store are not in the lock"
        return finding(Status.FAIL, summary, evidence)
    return finding(Status.PASS, "every model and blob in the store is pinned", evidence)

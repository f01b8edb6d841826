"""The integrity verification behind OG-INT-01..03 and the report's `integrity` section.

One run per Facts: the three checks and the section all call `integrity_for(facts)`, which
verifies once and memoizes the outcome for that Facts object.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from auditor import safeio
from auditor.errors import OffgridError
from auditor.inventory.engines import model_paths
from auditor.inventory.interface import EngineFacts, Facts
from auditor.models import lockfile
from auditor.models.cache import DEFAULT_MAX_AGE_DAYS, DEFAULT_STATE_DIR
from auditor.models.digests import DigestStats, open_source
from auditor.models.engine import EngineCheck, check_llamacpp, check_ollama
from auditor.models.hashing import Progress
from auditor.models.signing import LockSignature, inspect_lock_signature
from auditor.models.store import is_ollama_store
from auditor.models.verify import StoreReport, verify_gguf_dir, verify_ollama_store

OLLAMA_DEFAULT_STORE = Path("/usr/share/ollama/.ollama/models")


@dataclass(frozen=True)
class IntegrityRun:
    lock_path: str
    lock_sha256: str | None
    error: str | None = None  # the lock could not be used: every OG-INT control is `error`
    store: StoreReport | None = None
    store_error: str | None = None
    engine: EngineCheck | None = None
    engine_note: str = ""  # why the engine was not checked
    stats: DigestStats | None = None
    signature: LockSignature | None = None  # the lock's signature: which key signed the bundle


@dataclass(frozen=True)
class Target:
    """What to verify: a store (with its layout) and optionally a running engine."""

    store: Path | None
    layout: str | None  # "ollama" | "gguf"; None: decide from the directory
    engine_kind: str | None = None
    exe_path: str | None = None
    pid: int | None = None


def _layout(target: Target) -> str:
    if target.layout:
        return target.layout
    assert target.store is not None
    return "ollama" if is_ollama_store(target.store) else "gguf"


def _engine_check(lock: lockfile.Lock, target: Target) -> tuple[EngineCheck | None, str]:
    if target.engine_kind is None:
        return None, "no engine to check"
    pin = lock.engine(target.engine_kind)
    if pin is None:
        return None, f"the lock pins no {target.engine_kind} engine"
    if target.engine_kind == "ollama":
        return check_ollama(pin, target.exe_path), ""
    return check_llamacpp(pin, target.pid), ""


def lock_signature(lock_path: Path) -> LockSignature:
    """The key that signed the lock this workstation runs (its signature sits beside it)."""
    try:
        return inspect_lock_signature(lock_path)
    except OffgridError as exc:
        return LockSignature("unverifiable", str(exc))


def run_integrity(
    lock_path: Path,
    target: Target,
    *,
    full: bool = False,
    cache_dir: Path | None = DEFAULT_STATE_DIR,
    max_age_days: float = DEFAULT_MAX_AGE_DAYS,
    progress: Progress | None = None,
) -> IntegrityRun:
    try:
        lock = lockfile.load(lock_path)
        data = safeio.read_bytes(lock_path)
    except (OSError, OffgridError) as exc:
        return IntegrityRun(str(lock_path), None, error=str(exc))
    run = IntegrityRun(
        str(lock_path), hashlib.sha256(data).hexdigest(), signature=lock_signature(lock_path)
    )
    engine, note = _engine_check(lock, target)
    if target.store is None or not target.store.is_dir():
        where = target.store or "unknown"
        return replace(
            run,
            engine=engine,
            engine_note=note,
            store_error=f"model store {where} is not a directory",
        )
    source = open_source(cache_dir, full, max_age_days, progress=progress)
    if _layout(target) == "ollama":
        store = verify_ollama_store(lock.models, target.store, source)
    else:
        store = verify_gguf_dir(lock.gguf, target.store, source)
    return replace(run, store=store, engine=engine, engine_note=note, stats=source.finish())


def _store_from_engine(engine: EngineFacts) -> Path | None:
    """The Ollama store, or the directory of the llama.cpp server's --model file."""
    paths = model_paths(engine)
    if not paths:
        return None
    return paths[0] if engine.kind == "ollama" else paths[0].parent


def target_for(facts: Facts) -> Target:
    engine = facts.engine
    store = facts.options.store_dir
    if store is None and engine is not None:
        store = _store_from_engine(engine)
    layout = None
    if facts.options.store_dir is None and engine is not None:
        layout = "ollama" if engine.kind == "ollama" else "gguf"
    return Target(
        store=store,
        layout=layout,
        engine_kind=engine.kind if engine else facts.options.engine,
        exe_path=engine.exe_path if engine else None,
        pid=engine.main.pid if engine and engine.main else None,
    )


_MEMO: dict[int, tuple[Facts, IntegrityRun]] = {}


def integrity_for(facts: Facts) -> IntegrityRun | None:
    """The verification for these facts, done once; None when no lock is configured."""
    lock_path = facts.options.lock_path
    if lock_path is None:
        return None
    memo = _MEMO.get(id(facts))
    if memo is not None and memo[0] is facts:
        return memo[1]
    run = run_integrity(
        lock_path,
        target_for(facts),
        full=facts.options.full_hash,
        cache_dir=facts.options.hash_cache_dir or DEFAULT_STATE_DIR,
    )
    if len(_MEMO) >= 8:  # keep the last few audits only; ids are reused after collection
        _MEMO.clear()
    _MEMO[id(facts)] = (facts, run)
    return run


def _engine_dict(run: IntegrityRun) -> dict[str, Any] | None:
    if run.engine is None:
        return {"status": "not_checked", "note": run.engine_note} if run.engine_note else None
    check = run.engine
    return {
        "name": check.name,
        "pinned_version": check.version,
        "status": check.status,
        "error": check.error,
        "files": [
            {
                "path": f.path,
                "pinned_path": f.pinned_path,
                "sha256": f.sha256,
                "pinned_sha256": f.pinned_sha256,
                "ok": f.ok,
                "error": f.error,
            }
            for f in check.files
        ],
    }


def section_dict(run: IntegrityRun) -> dict[str, Any]:
    out: dict[str, Any] = {
        "lock_path": run.lock_path,
        "lock_sha256": run.lock_sha256,
        "error": run.error or run.store_error,
        "engine": _engine_dict(run),
    }
    if run.signature is not None:
        out["lock_signature"] = {
            "status": run.signature.status,
            "fingerprint": run.signature.fingerprint,
            "detail": run.signature.reason,
        }
    if run.stats is not None:
        out |= {"mode": run.stats.mode, "mode_reason": run.stats.mode_reason}
    if run.store is not None:
        out |= {
            "store": run.store.root,
            "layout": run.store.layout,
            "models": [
                {"name": i.name, "status": i.status, "problems": [str(p) for p in i.problems]}
                for i in run.store.items
            ],
            "unpinned": [str(p) for p in run.store.unpinned],
        }
    if run.stats is not None:
        out |= {
            "blobs_hashed": run.stats.blobs_hashed,
            "blobs_from_cache": run.stats.blobs_from_cache,
            "bytes_hashed": run.stats.bytes_hashed,
            "duration_s": run.stats.duration_s,
        }
    return out


def integrity_section(facts: Facts) -> dict[str, Any] | None:
    """The report's `integrity` section when a lock is configured, else None."""
    run = integrity_for(facts)
    return None if run is None else section_dict(run)

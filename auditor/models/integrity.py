"""Verify a model store, and optionally a running engine, against an offgrid lock file.

`offgrid models verify` runs it on the paths it is given; an audit runs it once while it
collects facts (auditor.inventory.integrity), and OG-INT-01..03 and the report's
`integrity` section read that one outcome.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

from auditor import safeio
from auditor.engine_kind import EngineKind
from auditor.errors import OffgridError
from auditor.models import lockfile
from auditor.models.cache import DEFAULT_MAX_AGE_DAYS, DEFAULT_STATE_DIR
from auditor.models.digests import DigestStats, open_source
from auditor.models.hashing import Progress
from auditor.models.pins import EngineCheck, build_facts, check_engine
from auditor.models.signing import SignerFact
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
    signature: SignerFact | None = None  # which key signed the lock; None: not looked at


@dataclass(frozen=True)
class Target:
    """What to verify: a store (with its layout) and optionally a running engine."""

    store: Path | None
    layout: str | None  # "ollama" | "gguf"; None: decide from the directory
    engine_kind: EngineKind | None = None
    exe_path: str | None = None
    pid: int | None = None
    cpu_flags: frozenset[str] | None = None  # this machine's /proc/cpuinfo flags; None: unread


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
    check = check_engine(target.engine_kind, pin, target.exe_path, target.pid)
    return replace(check, build=build_facts(pin, target.cpu_flags)), ""


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
    run = IntegrityRun(str(lock_path), hashlib.sha256(data).hexdigest())
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

"""The integrity fact: the engine and the model store verified against the lock file.

Collected once per audit, like every other fact; OG-INT-01..03 and the report's
`integrity` section read the outcome, with the key that signed the lock (its
`.sig` beside it) checked against the allowed signers configured for the audit. Without a
lock file there is nothing to verify.
"""

from __future__ import annotations

from dataclasses import replace

from auditor.enginebuild.isa import host_cpu_flags
from auditor.inventory.interface import AuditOptions, EngineFacts
from auditor.inventory.profiles import model_store, profile
from auditor.models.cache import DEFAULT_STATE_DIR
from auditor.models.integrity import IntegrityRun, Target, run_integrity
from auditor.models.signing import signer_fact


def target_for(options: AuditOptions, engine: EngineFacts | None) -> Target:
    """The store the user named, else the engine's own (with its layout), and the engine."""
    store = options.store_dir
    layout = None
    if store is None and engine is not None:
        store = model_store(engine)
    if options.store_dir is None and engine is not None:
        layout = profile(engine.kind).store_layout
    return Target(
        store=store,
        layout=layout,
        engine_kind=engine.kind if engine else options.engine,
        exe_path=engine.exe_path if engine else None,
        pid=engine.main.pid if engine and engine.main else None,
        cpu_flags=host_cpu_flags() or None,
    )


def collect(options: AuditOptions, engine: EngineFacts | None) -> IntegrityRun | None:
    """The verification the lock file asks for; None when no lock file is configured."""
    if options.lock_path is None:
        return None
    run = run_integrity(
        options.lock_path,
        target_for(options, engine),
        full=options.full_hash,
        cache_dir=options.hash_cache_dir or DEFAULT_STATE_DIR,
    )
    return replace(run, signature=signer_fact(options.lock_path, options.allowed_signers))

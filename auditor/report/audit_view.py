"""Display rows for the audit's own sections: privilege, engine and integrity."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.report.model import (
    EngineBuildRef,
    EngineNotChecked,
    EngineSection,
    FileCheck,
    IntegritySection,
    ModelCheck,
    NamespaceRef,
    PrivilegeSection,
)
from auditor.report.sections import KeyValues, Table, format_value


@dataclass(frozen=True)
class IntegrityView:
    facts: KeyValues
    models: tuple[ModelCheck, ...]  # what the templates list per model
    tables: tuple[tuple[str, Table], ...]  # lists of records, e.g. the engine's files


def _rows(*pairs: tuple[str, object]) -> KeyValues:
    return tuple((label, format_value(value)) for label, value in pairs)


def privilege_rows(privilege: PrivilegeSection) -> KeyValues:
    pairs = (("euid", privilege.euid), ("is_root", privilege.is_root), ("note", privilege.note))
    return _rows(*((label, value) for label, value in pairs if value is not None))


def engine_rows(engine: EngineSection | None) -> KeyValues:
    if engine is None:
        return ()
    unit = engine.unit
    unit_rows: tuple[tuple[str, object], ...] = (("unit", None),)
    if unit is not None:
        unit_rows = (
            ("unit.name", unit.name), ("unit.source", unit.source),
            ("unit.fragment_path", unit.fragment_path), ("unit.dropin_paths", unit.dropin_paths),
        )  # fmt: skip
    tree = ", ".join(f"{p.pid} {p.name}" for p in engine.tree)
    return _rows(
        ("kind", engine.kind), ("discovered_by", engine.discovered_by), ("pid", engine.pid),
        ("create_time", engine.create_time), ("name", engine.name), ("user", engine.user),
        ("exe", engine.exe), ("cmdline", " ".join(engine.cmdline) or None),
        ("version", engine.version), ("port", engine.port), ("listen_host", engine.listen_host),
        ("tree", tree or None), ("other_candidates", engine.other_candidates),
        *unit_rows,
    )  # fmt: skip


def _namespace_text(space: NamespaceRef) -> str:
    held = f" ({space.cgroup})" if space.cgroup and not space.shares_audit_namespace else ""
    head = f"{space.namespace}{held} via pid {space.pid}"
    if space.error is not None:
        return f"{head}: NOT READ: {space.error}"
    parts = [f"{space.sockets} socket(s)"] if space.sockets is not None else []
    if space.interfaces is not None:
        links = ", ".join(
            f"{i.name} ({i.kind}{', ' + ' '.join(i.addresses) if i.addresses else ''})"
            for i in space.interfaces
        )
        parts.append(f"interfaces {links}; {space.routes} route(s)")
    return f"{head}: {'; '.join(parts)}"


def namespace_rows(spaces: tuple[NamespaceRef, ...] | None) -> KeyValues:
    """One row per network namespace the audit looked at."""
    return tuple((f"network namespace ({s.role})", _namespace_text(s)) for s in spaces or ())


def _file_row(file: FileCheck) -> tuple[str, ...]:
    values = (file.path, file.pinned_path, file.sha256, file.pinned_sha256, file.ok, file.error)
    return tuple(format_value(v) for v in values)


def _engine_rows(integrity: IntegritySection) -> tuple[KeyValues, tuple[tuple[str, Table], ...]]:
    engine = integrity.engine
    if engine is None:
        return _rows(("engine", None)), ()
    if isinstance(engine, EngineNotChecked):
        return _rows(("engine.status", engine.status), ("engine.note", engine.note)), ()
    rows = _rows(
        ("engine.name", engine.name), ("engine.pinned_version", engine.pinned_version),
        ("engine.status", engine.status), ("engine.error", engine.error),
    )  # fmt: skip
    rows += _build_rows(engine.build)
    if not engine.files:
        return rows, ()
    header = ("path", "pinned_path", "sha256", "pinned_sha256", "ok", "error")
    files = tuple(
        tuple(
            format_value(v)
            for v in (f.path, f.pinned_path, f.sha256, f.pinned_sha256, f.ok, f.error)
        )
        for f in engine.files
    )
    return rows, (("engine.files", Table(header, files)),)


def _build_rows(build: EngineBuildRef | None) -> KeyValues:
    if build is None:
        return _rows(("engine.build", "no build record in the lock"))
    missing = build.cpu_missing
    verdict = "unknown (CPU flags unreadable)" if missing is None else (
        "satisfied" if not missing else "missing " + " ".join(missing))  # fmt: skip
    rows = _rows(
        ("engine.build.variant", build.variant),
        ("engine.build.cpu_baseline", " ".join(build.cpu_baseline)),
        ("engine.build.this_cpu", verdict),
    )
    if build.cuda_version:
        rows += _rows(
            ("engine.build.cuda", build.cuda_version),
            ("engine.build.cuda_architectures", " ".join(build.cuda_architectures)),
        )
    return rows


def integrity_view(integrity: IntegritySection | None) -> IntegrityView | None:
    if integrity is None:
        return None
    facts = _rows(
        ("lock_path", integrity.lock_path), ("lock_sha256", integrity.lock_sha256),
        ("error", integrity.error),
    )  # fmt: skip
    engine_facts, tables = _engine_rows(integrity)
    facts += engine_facts
    hashing, store = integrity.hashing, integrity.store
    if hashing is not None:
        facts += _rows(("mode", hashing.mode), ("mode_reason", hashing.mode_reason))
    models: tuple[ModelCheck, ...]  # what the templates list per model = ()
    if store is not None:
        facts += _rows(("store", store.store), ("layout", store.layout))
        facts += _rows(("unpinned", store.unpinned))
        models = store.models
    if hashing is not None:
        facts += _rows(
            ("blobs_hashed", hashing.blobs_hashed), ("blobs_from_cache", hashing.blobs_from_cache),
            ("bytes_hashed", hashing.bytes_hashed), ("duration_s", hashing.duration_s),
        )  # fmt: skip
    return IntegrityView(facts=facts, models=models, tables=tables)

"""The compliance-and-performance report: one typed model that every format renders.

auditor/data/report.schema.json describes `to_dict(report)`, the one place the model
becomes JSON (auditor/report/load.py is the way back); bump SCHEMA_VERSION (major for
breaking changes) whenever the shape changes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from auditor.bench.results import BenchmarkSection
from auditor.report.bench_json import benchmark_to_json
from auditor.verdicts import ControlResult, summarize

__all__ = [
    "SCHEMA_VERSION",
    "EngineBuildRef",
    "EngineNotChecked",
    "EnginePinCheck",
    "EngineSection",
    "ExpiredWaiver",
    "ExtraSection",
    "FileCheck",
    "HashingSection",
    "HostInfo",
    "IntegritySection",
    "InterfaceRef",
    "ModelCheck",
    "NamespaceRef",
    "PrivilegeSection",
    "ProcessRef",
    "Report",
    "StoreSection",
    "UnitSection",
    "integrity_json",
    "summarize",
    "to_dict",
]

SCHEMA_VERSION = "1.1"


@dataclass(frozen=True)
class HostInfo:
    hostname: str
    os: str
    kernel: str
    machine: str


@dataclass(frozen=True)
class PrivilegeSection:
    """Who the audit ran as; a field a saved report leaves out is None."""

    euid: int | None = None
    is_root: bool | None = None
    note: str | None = None  # what running without root hides


@dataclass(frozen=True)
class ProcessRef:
    pid: int
    create_time: float
    name: str


@dataclass(frozen=True)
class UnitSection:
    name: str
    source: str  # "systemctl" or "files"
    fragment_path: str | None
    dropin_paths: tuple[str, ...]


@dataclass(frozen=True)
class EngineSection:
    """The discovered engine (no environment values: they may hold secrets)."""

    kind: str
    discovered_by: str
    pid: int | None
    create_time: float | None
    name: str | None
    user: str | None
    exe: str | None
    cmdline: tuple[str, ...]
    version: str | None
    port: int | None
    listen_host: str | None
    tree: tuple[ProcessRef, ...]
    other_candidates: tuple[int, ...]
    unit: UnitSection | None


@dataclass(frozen=True)
class FileCheck:
    path: str
    pinned_path: str | None
    sha256: str | None
    pinned_sha256: str | None
    ok: bool
    error: str | None


@dataclass(frozen=True)
class EngineBuildRef:
    """The pinned build's needs (from the lock) beside this machine's CPU."""

    variant: str
    cpu_baseline: tuple[str, ...]
    cpu_missing: tuple[str, ...] | None  # None: this machine's CPU flags were not readable
    cuda_version: str | None
    cuda_architectures: tuple[str, ...]


@dataclass(frozen=True)
class EnginePinCheck:
    name: str
    pinned_version: str | None
    status: str  # "ok" | "failed" | "unreadable"
    error: str | None
    files: tuple[FileCheck, ...]
    build: EngineBuildRef | None = None  # None: the pin carries no build record


@dataclass(frozen=True)
class EngineNotChecked:
    note: str  # why the engine was not compared with the lock
    status: str = "not_checked"


@dataclass(frozen=True)
class ModelCheck:
    name: str
    status: str
    problems: tuple[str, ...]


@dataclass(frozen=True)
class StoreSection:
    store: str
    layout: str
    models: tuple[ModelCheck, ...]
    unpinned: tuple[str, ...]


@dataclass(frozen=True)
class HashingSection:
    mode: str  # "full" or "cached"
    mode_reason: str
    blobs_hashed: int
    blobs_from_cache: int
    bytes_hashed: int
    duration_s: float


@dataclass(frozen=True)
class IntegritySection:
    """The engine and model store compared with the lock file (OG-INT-01..03)."""

    lock_path: str
    lock_sha256: str | None
    error: str | None
    engine: EnginePinCheck | EngineNotChecked | None
    hashing: HashingSection | None = None
    store: StoreSection | None = None


@dataclass(frozen=True)
class GpuRef:
    name: str
    driver_version: str
    memory_total_mib: int | None


@dataclass(frozen=True)
class GpuSection:
    devices: tuple[GpuRef, ...]
    cuda_version: str | None
    error: str | None


@dataclass(frozen=True)
class ServedRef:
    """A model the engine had loaded: its size, how much is on the GPU, the share."""

    name: str
    size: int | None
    size_vram: int | None
    gpu_share: float | None  # size_vram / size; None: not stated
    warning: str | None  # set when the model is not fully on the GPU


@dataclass(frozen=True)
class InterfaceRef:
    name: str
    kind: str  # "loopback", or rtnetlink's link kind ("veth", "dummy", …), or "device"
    up: bool
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class NamespaceRef:
    """A network namespace the audit looked at, and whether it could be read."""

    namespace: str  # "net:[4026532291]"
    role: str  # "audit" (its own), "engine", "other engine candidate"
    pid: int  # the process it was entered through
    shares_audit_namespace: bool
    cgroup: str | None  # the container or unit that holds it
    sockets: int | None  # sockets read there; None: not read (see error)
    interfaces: tuple[InterfaceRef, ...] | None  # None: not read there
    routes: int | None
    error: str | None


@dataclass(frozen=True)
class ExtraSection:
    """What the audit observed beyond the controls; a field a saved report leaves out is None."""

    sockets_observed: int | None = None
    watched_sockets: int | None = None
    watch_seconds: float | None = None
    watch_samples: int | None = None  # samples --watch took
    watch_interval_ms: float | None = None  # their real median interval
    processes_observed: int | None = None
    systemd_running: bool | None = None
    expired_waivers: tuple[ExpiredWaiver, ...] | None = None
    gpu: GpuSection | None = None  # nvidia-smi: devices, driver, CUDA
    served_models: tuple[ServedRef, ...] | None = None  # what the engine had loaded
    namespaces: tuple[NamespaceRef, ...] | None = None  # the network namespaces looked at


@dataclass(frozen=True)
class ExpiredWaiver:
    control_id: str
    expires: str
    justification: str


@dataclass(frozen=True)
class Report:
    tool_version: str
    host: HostInfo
    started_at: str
    finished_at: str
    privilege: PrivilegeSection
    engine: EngineSection | None
    controls: tuple[ControlResult, ...]
    incomplete: tuple[str, ...] = ()
    benchmark: BenchmarkSection | None = None  # filled by `offgrid bench` (auditor.bench)
    integrity: IntegritySection | None = None  # set when a lock file is configured
    schema_version: str = SCHEMA_VERSION
    extra: ExtraSection = field(default_factory=ExtraSection)


Json = dict[str, object]


def _without_none(data: Json) -> Json:
    return {key: value for key, value in data.items() if value is not None}


def _engine_json(engine: EngineSection) -> Json:
    data = asdict(engine)
    data["cmdline"] = list(engine.cmdline)
    data["tree"] = [asdict(p) for p in engine.tree]
    data["other_candidates"] = list(engine.other_candidates)
    if engine.unit is not None:
        data["unit"] = asdict(engine.unit) | {"dropin_paths": list(engine.unit.dropin_paths)}
    return data


def _pin_check_json(engine: EnginePinCheck | EngineNotChecked | None) -> Json | None:
    if engine is None:
        return None
    if isinstance(engine, EngineNotChecked):
        return {"status": engine.status, "note": engine.note}
    data = asdict(engine)
    data["files"] = [asdict(f) for f in engine.files]
    if engine.build is None:
        del data["build"]
    return data


_HASH_COUNTS = ("blobs_hashed", "blobs_from_cache", "bytes_hashed", "duration_s")


def integrity_json(integrity: IntegritySection) -> Json:
    """The `integrity` section as JSON (also what `offgrid models verify --format json` prints)."""
    data: Json = {
        "lock_path": integrity.lock_path,
        "lock_sha256": integrity.lock_sha256,
        "error": integrity.error,
        "engine": _pin_check_json(integrity.engine),
    }
    hashing = integrity.hashing
    if hashing is not None:
        data |= {"mode": hashing.mode, "mode_reason": hashing.mode_reason}
    if integrity.store is not None:
        store = integrity.store
        data |= {
            "store": store.store,
            "layout": store.layout,
            "models": [asdict(m) | {"problems": list(m.problems)} for m in store.models],
            "unpinned": list(store.unpinned),
        }
    if hashing is not None:
        data |= {key: getattr(hashing, key) for key in _HASH_COUNTS}
    return data


def _namespace_json(space: NamespaceRef) -> Json:
    data = asdict(space)
    if space.interfaces is not None:
        data["interfaces"] = [
            asdict(i) | {"addresses": list(i.addresses)} for i in space.interfaces
        ]
    return data


def _extra_json(extra: ExtraSection) -> Json:
    data = asdict(extra)
    if extra.expired_waivers is not None:
        data["expired_waivers"] = [asdict(w) for w in extra.expired_waivers]
    if extra.gpu is not None:
        data["gpu"] = asdict(extra.gpu) | {"devices": [asdict(d) for d in extra.gpu.devices]}
    if extra.served_models is not None:
        data["served_models"] = [asdict(m) for m in extra.served_models]
    if extra.namespaces is not None:
        data["namespaces"] = [_namespace_json(n) for n in extra.namespaces]
    return _without_none(data)


def _control_json(control: ControlResult) -> Json:
    data = asdict(control)
    data["status"] = str(control.status)
    data["evidence"] = [asdict(e) for e in control.evidence]
    data["references"] = {k: list(v) for k, v in control.references.items()}
    return data


def to_dict(report: Report) -> dict[str, Any]:
    """The JSON form of the report (validated by report.schema.json)."""
    return {
        "host": asdict(report.host),
        "started_at": report.started_at,
        "finished_at": report.finished_at,
        "privilege": _without_none(asdict(report.privilege)),
        "engine": None if report.engine is None else _engine_json(report.engine),
        "controls": [_control_json(c) for c in report.controls],
        "incomplete": list(report.incomplete),
        "benchmark": None if report.benchmark is None else benchmark_to_json(report.benchmark),
        "integrity": None if report.integrity is None else integrity_json(report.integrity),
        "schema_version": report.schema_version,
        "extra": _extra_json(report.extra),
        "tool": {"name": "offgrid", "version": report.tool_version},
        "summary": summarize(report.controls),
    }

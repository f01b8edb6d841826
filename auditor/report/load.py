"""Read a saved JSON report back into the Report model (to convert its format)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from auditor import safeio
from auditor.errors import InputError
from auditor.report.bench_json import benchmark_from_json
from auditor.report.model import (
    EngineBuildRef,
    EngineNotChecked,
    EnginePinCheck,
    EngineSection,
    ExpiredWaiver,
    ExtraSection,
    FileCheck,
    GpuRef,
    GpuSection,
    HashingSection,
    HostInfo,
    IntegritySection,
    InterfaceRef,
    ModelCheck,
    NamespaceRef,
    PrivilegeSection,
    ProcessRef,
    Report,
    ServedRef,
    StoreSection,
    UnitSection,
)
from auditor.report.validate import validate
from auditor.verdicts import ControlResult, Evidence, Status, Waiver

# A saved report larger than this is not something offgrid wrote.
MAX_REPORT_BYTES = 64 * 1024 * 1024


def read_json(path: Path) -> Any:
    """The parsed JSON in `path`; any reason it cannot be read is an InputError."""
    return safeio.load_json(path, MAX_REPORT_BYTES)


@contextmanager
def shape_guard(source: str) -> Iterator[None]:
    """Around code that reads a loaded report: a part of the wrong shape that the schema lets
    through (sections are open-ended) is bad input, exit 2, not a crash."""
    try:
        yield
    except (TypeError, AttributeError, LookupError, ValueError, ArithmeticError) as exc:
        raise InputError(
            f"{source}: not a usable offgrid report: a section has an unexpected shape ({exc})"
        ) from None


def _control(data: Mapping[str, Any]) -> ControlResult:
    waiver = data["waiver"]
    return ControlResult(
        id=data["id"],
        family=data["family"],
        title=data["title"],
        severity=data["severity"],
        status=Status(data["status"]),
        summary=data["summary"],
        evidence=tuple(Evidence(e["label"], e["value"]) for e in data["evidence"]),
        rationale=data["rationale"],
        remediation=data["remediation"],
        references={name: tuple(refs) for name, refs in data["references"].items()},
        waiver=Waiver(**waiver) if waiver is not None else None,
    )


def _privilege(data: Mapping[str, Any]) -> PrivilegeSection:
    return PrivilegeSection(data.get("euid"), data.get("is_root"), data.get("note"))


def _unit(data: Mapping[str, Any] | None) -> UnitSection | None:
    if data is None:
        return None
    return UnitSection(
        data["name"], data["source"], data["fragment_path"], tuple(data["dropin_paths"])
    )


def _engine(data: Mapping[str, Any] | None) -> EngineSection | None:
    if data is None:
        return None
    return EngineSection(
        **{key: data[key] for key in _ENGINE_SCALARS},
        cmdline=tuple(data["cmdline"]),
        tree=tuple(ProcessRef(p["pid"], p["create_time"], p["name"]) for p in data["tree"]),
        other_candidates=tuple(data["other_candidates"]),
        unit=_unit(data["unit"]),
    )


_ENGINE_SCALARS = (
    "kind", "discovered_by", "pid", "create_time", "name", "user", "exe", "version", "port",
    "listen_host",
)  # fmt: skip


def _pin_check(data: Mapping[str, Any] | None) -> EnginePinCheck | EngineNotChecked | None:
    if data is None:
        return None
    if data["status"] == "not_checked":
        return EngineNotChecked(data["note"])
    files = tuple(FileCheck(**f) for f in data["files"])
    build = data.get("build")
    return EnginePinCheck(
        data["name"],
        data["pinned_version"],
        data["status"],
        data["error"],
        files,
        None if build is None else _build_ref(build),
    )


def _build_ref(data: Mapping[str, Any]) -> EngineBuildRef:
    missing = data["cpu_missing"]
    return EngineBuildRef(
        data["variant"],
        tuple(data["cpu_baseline"]),
        None if missing is None else tuple(missing),
        data["cuda_version"],
        tuple(data["cuda_architectures"]),
    )


def _integrity(data: Mapping[str, Any] | None) -> IntegritySection | None:
    if data is None:
        return None
    hashing = store = None
    if "mode" in data:
        hashing = HashingSection(**{k: data[k] for k in _HASHING_KEYS})
    if "store" in data:
        models = tuple(
            ModelCheck(m["name"], m["status"], tuple(m["problems"])) for m in data["models"]
        )
        store = StoreSection(data["store"], data["layout"], models, tuple(data["unpinned"]))
    engine = _pin_check(data["engine"])
    return IntegritySection(
        data["lock_path"], data["lock_sha256"], data["error"], engine, hashing, store
    )


_HASHING_KEYS = (
    "mode", "mode_reason", "blobs_hashed", "blobs_from_cache", "bytes_hashed", "duration_s",
)  # fmt: skip


def _gpu(data: Mapping[str, Any] | None) -> GpuSection | None:
    if data is None:
        return None
    devices = tuple(GpuRef(**d) for d in data["devices"])
    return GpuSection(devices, data.get("cuda_version"), data.get("error"))


def _namespace(data: Mapping[str, Any]) -> NamespaceRef:
    interfaces = data["interfaces"]
    return NamespaceRef(
        **{key: data[key] for key in _NAMESPACE_KEYS},
        interfaces=None
        if interfaces is None
        else tuple(
            InterfaceRef(i["name"], i["kind"], i["up"], tuple(i["addresses"])) for i in interfaces
        ),
    )


_NAMESPACE_KEYS = (
    "namespace", "role", "pid", "shares_audit_namespace", "cgroup", "sockets", "routes", "error",
)  # fmt: skip


def _extra(data: Mapping[str, Any]) -> ExtraSection:
    waivers = data.get("expired_waivers")
    served = data.get("served_models")
    spaces = data.get("namespaces")
    return ExtraSection(
        **{key: data.get(key) for key in _EXTRA_COUNTS},
        expired_waivers=None if waivers is None else tuple(ExpiredWaiver(**w) for w in waivers),
        gpu=_gpu(data.get("gpu")),
        served_models=None if served is None else tuple(ServedRef(**m) for m in served),
        namespaces=None if spaces is None else tuple(_namespace(n) for n in spaces),
    )


_EXTRA_COUNTS = (
    "sockets_observed", "watched_sockets", "watch_seconds", "watch_samples", "watch_interval_ms",
    "processes_observed",
    "systemd_running",
)  # fmt: skip


def from_dict(data: Mapping[str, Any]) -> Report:
    """The Report that `to_dict` turned into `data` (which must already be valid)."""
    return Report(
        tool_version=data["tool"]["version"],
        host=HostInfo(**data["host"]),
        started_at=data["started_at"],
        finished_at=data["finished_at"],
        privilege=_privilege(data["privilege"]),
        engine=_engine(data["engine"]),
        controls=tuple(_control(c) for c in data["controls"]),
        incomplete=tuple(data["incomplete"]),
        benchmark=None if data["benchmark"] is None else benchmark_from_json(data["benchmark"]),
        integrity=_integrity(data["integrity"]),
        schema_version=data["schema_version"],
        extra=_extra(data["extra"]),
    )


def load_report(path: Path) -> Report:
    data = read_json(path)
    errors = validate(data)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InputError(f"{path}: not a valid offgrid report: {errors[0]}{more}")
    return from_dict(data)

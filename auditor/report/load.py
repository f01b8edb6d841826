"""Read a saved JSON report back into the Report model (to convert its format)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from auditor import safeio
from auditor.errors import InputError
from auditor.inventory.interface import LoggerIdentity, LogPosition, RecorderState, RuleIdentity
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
    ProbeWindow,
    ProcessRef,
    RecordingSection,
    Report,
    ServedRef,
    SignatureSection,
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
    signature = data.get("signature")
    return IntegritySection(
        data["lock_path"], data["lock_sha256"], data["error"], engine, hashing, store,
        None if signature is None else SignatureSection(**signature),
    )  # fmt: skip


_HASHING_KEYS = (
    "mode", "mode_reason", "blobs_hashed", "blobs_from_cache", "bytes_hashed", "duration_s",
)  # fmt: skip


def _gpu(data: Mapping[str, Any] | None) -> GpuSection | None:
    if data is None:
        return None
    devices = tuple(GpuRef(**d) for d in data["devices"])
    return GpuSection(devices, data.get("cuda_version"), data.get("error"))


def _typed(value: Any, kinds: type | tuple[type, ...], what: str) -> Any:
    """`value` when it has one of `kinds` (never a bool for an int), else ValueError."""
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise ValueError(f"{what}: {value!r} has the wrong type")
    if not isinstance(value, kinds):
        raise ValueError(f"{what}: {value!r} has the wrong type")
    return value


_OPT_INT = (int, type(None))
_OPT_STR = (str, type(None))


def _fields(data: Any, spec: Mapping[str, Any], what: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{what}: not an object")
    return {name: _typed(data.get(name), kinds, f"{what}.{name}") for name, kinds in spec.items()}


_RULE = {"family": str, "table": str, "chain": str, "table_handle": _OPT_INT,
         "rule_handle": _OPT_INT, "digest": _OPT_STR}  # fmt: skip
_LOGGER = {"pid": int, "name": str, "started_at": str}
_LOG = {"path": str, "inode": int, "offset": int, "tail_sha256": str}
_STATE = {"source": str, "read_at": str, "boot_id": _OPT_STR, "skuid": _OPT_STR,
          "packets": _OPT_INT, "bytes": _OPT_INT, "recorded_packets": int}  # fmt: skip


def recorder_state(data: Any) -> RecorderState:
    """A recorded source's state as a report holds it; ValueError when it is not one."""
    fields = _fields(data, _STATE, "state")
    rule, logger, log = data.get("rule"), data.get("logger"), data.get("log")
    if isinstance(fields["packets"], int) and fields["packets"] < 0:
        raise ValueError("state.packets: negative")
    position = None if log is None else LogPosition(**_fields(log, _LOG, "state.log"))
    if position is not None and (position.offset < 0 or len(position.tail_sha256) != 64):
        raise ValueError("state.log: not a log position")
    namespace, sealed = data.get("namespace"), data.get("sealed", False)
    if namespace is not None and not isinstance(namespace, str):
        raise ValueError("state.namespace: not a string")
    if not isinstance(sealed, bool):
        raise ValueError("state.sealed: not a boolean")
    return RecorderState(
        **fields,
        namespace=namespace,
        sealed=sealed,
        rule=None if rule is None else RuleIdentity(**_fields(rule, _RULE, "state.rule")),
        logger=None
        if logger is None
        else LoggerIdentity(**_fields(logger, _LOGGER, "state.logger")),
        log=position,
    )


def _recording(data: Mapping[str, Any]) -> RecordingSection:
    probe = data.get("probe")
    return RecordingSection(
        state=recorder_state(data["state"]),
        since_entry=data["since_entry"],
        since=data["since"],
        new_packets=data["new_packets"],
        attempts=data["attempts"],
        read_from=data["read_from"],
        log_break=data["log_break"],
        probe=None if probe is None else ProbeWindow(**probe),
    )


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
    recording = data.get("egress_recording")
    spaces = data.get("namespaces")
    return ExtraSection(
        **{key: data.get(key) for key in _EXTRA_COUNTS},
        expired_waivers=None if waivers is None else tuple(ExpiredWaiver(**w) for w in waivers),
        gpu=_gpu(data.get("gpu")),
        served_models=None if served is None else tuple(ServedRef(**m) for m in served),
        egress_recording=None if recording is None else tuple(_recording(r) for r in recording),
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

"""The report's typed sections, built from what the audit collected and verified."""

from __future__ import annotations

from dataclasses import asdict

from auditor.checks.waivers import WaiverSet
from auditor.inventory.interface import (
    EgressFacts,
    EngineFacts,
    Facts,
    GpuFacts,
    InterfaceFact,
    NamespaceFacts,
    RecordedSource,
    ServedModels,
    UnitFacts,
)
from auditor.models.integrity import IntegrityRun
from auditor.models.pins import EngineCheck
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
    IntegritySection,
    InterfaceRef,
    ModelCheck,
    NamespaceRef,
    PrivilegeSection,
    ProbeWindow,
    ProcessRef,
    RecordingSection,
    ServedRef,
    SignatureSection,
    StoreSection,
    UnitSection,
)


def privilege_section(facts: Facts) -> PrivilegeSection:
    privilege = facts.privilege
    return PrivilegeSection(privilege.euid, privilege.is_root, privilege.note)


def _unit_section(unit: UnitFacts | None) -> UnitSection | None:
    if unit is None:
        return None
    return UnitSection(unit.name, unit.source, unit.fragment_path, unit.dropin_paths)


def engine_section(engine: EngineFacts | None) -> EngineSection | None:
    """What the report says about the engine (no environment values: they may hold secrets)."""
    if engine is None:
        return None
    main = engine.main
    return EngineSection(
        kind=str(engine.kind),
        discovered_by=engine.discovered_by,
        pid=main.pid if main else None,
        create_time=main.create_time if main else None,
        name=main.name if main else None,
        user=main.username if main else None,
        exe=engine.exe_path,
        cmdline=main.cmdline if main else (),
        version=engine.version,
        port=engine.port,
        listen_host=engine.listen_host,
        tree=tuple(ProcessRef(p.pid, p.create_time, p.name) for p in engine.tree),
        other_candidates=engine.other_candidates,
        unit=_unit_section(engine.unit),
    )


def _pin_check(run: IntegrityRun) -> EnginePinCheck | EngineNotChecked | None:
    check: EngineCheck | None = run.engine
    if check is None:
        return EngineNotChecked(run.engine_note) if run.engine_note else None
    files = tuple(
        FileCheck(f.path, f.pinned_path, f.sha256, f.pinned_sha256, f.ok, f.error)
        for f in check.files
    )
    build = check.build
    ref = None
    if build is not None:
        ref = EngineBuildRef(
            build.variant, build.cpu_baseline, build.cpu_missing,
            build.cuda_version, build.cuda_architectures,
        )  # fmt: skip
    return EnginePinCheck(check.name, check.version, check.status, check.error, files, ref)


def integrity_section(run: IntegrityRun) -> IntegritySection:
    """The lock verification as the report (and `offgrid models verify`) shows it."""
    stats = run.stats
    hashing = None
    if stats is not None:
        hashing = HashingSection(
            stats.mode, stats.mode_reason, stats.blobs_hashed, stats.blobs_from_cache,
            stats.bytes_hashed, stats.duration_s,
        )  # fmt: skip
    store = None
    if run.store is not None:
        models = tuple(
            ModelCheck(i.name, i.status, tuple(str(p) for p in i.problems)) for i in run.store.items
        )
        unpinned = tuple(str(p) for p in run.store.unpinned)
        store = StoreSection(run.store.root, run.store.layout, models, unpinned)
    error = run.error or run.store_error
    signature = None
    if run.signature is not None:
        signature = SignatureSection(**asdict(run.signature))
    return IntegritySection(
        run.lock_path, run.lock_sha256, error, _pin_check(run), hashing, store, signature
    )


def gpu_section(gpu: GpuFacts | None) -> GpuSection | None:
    if gpu is None:
        return None
    devices = tuple(GpuRef(d.name, d.driver_version, d.memory_total_mib) for d in gpu.devices)
    return GpuSection(devices, gpu.cuda_version, gpu.error)


def served_refs(served: ServedModels | None) -> tuple[ServedRef, ...] | None:
    """Each loaded model's share on the GPU, with a warning when it is not all there."""
    if served is None or served.error:
        return None
    refs = []
    for model in served.models:
        share = None
        if model.size and model.size_vram is not None:
            share = round(model.size_vram / model.size, 4)
        warning = None
        if share is not None and share < 1:
            warning = (
                f"{model.name} is {share:.0%} on the GPU: the rest runs on the CPU, at a "
                "fraction of the speed"
            )
        refs.append(ServedRef(model.name, model.size, model.size_vram, share, warning))
    return tuple(refs)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _float_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def new_packets(source: RecordedSource) -> int | None:
    """The counter's gain since the baseline; None when the baseline's counter is not this one."""
    now, before = source.now, source.before
    if before is None or now.packets is None or before.packets is None:
        return None
    if before.rule != now.rule or before.boot_id != now.boot_id or now.rule is None:
        return None
    if before.sealed != now.sealed or before.namespace not in (None, now.namespace):
        return None
    return now.packets - before.packets


def recording_sections(egress: EgressFacts | None) -> tuple[RecordingSection, ...] | None:
    """Each recorded source's state (the next audit's baseline) and its delta: the audit's
    own namespace's, then those inside a sealed engine's namespace."""
    sealed = egress.sealed if egress else None
    scopes = [] if egress is None or egress.recording is None else [
        (egress.recording, egress.sources)
    ]  # fmt: skip
    if sealed is not None and sealed.recording is not None:
        scopes.append((sealed.recording, sealed.sources))
    if egress is None or not scopes:
        return None
    previous, probe = egress.previous, egress.probe
    window = None
    if probe is not None:
        window = ProbeWindow(probe.target, probe.source_port, probe.started_at, probe.finished_at)
    return tuple(
        RecordingSection(
            state=source.now,
            since_entry=previous.entry if previous else None,
            since=previous.finished_at if previous else None,
            new_packets=new_packets(source),
            attempts=len(recording.attempts),
            read_from=recording.read_from,
            log_break=source.log_break,
            probe=window,
        )
        for recording, sources in scopes
        for source in sources
    )


def extra_section(facts: Facts, waivers: WaiverSet | None) -> ExtraSection:
    return ExtraSection(
        sockets_observed=len(facts.sockets),
        watched_sockets=len(facts.watched_sockets),
        watch_seconds=facts.options.watch_seconds,
        watch_samples=_int_or_none(facts.extra.get("watch_samples")),
        watch_interval_ms=_float_or_none(facts.extra.get("watch_interval_ms")),
        processes_observed=len(facts.processes),
        systemd_running=facts.systemd_running,
        expired_waivers=tuple(
            ExpiredWaiver(w.control_id, w.expires, w.justification)
            for w in (waivers.expired if waivers else ())
        ),
        gpu=gpu_section(facts.gpu),
        served_models=served_refs(facts.served),
        egress_recording=recording_sections(facts.egress),
        namespaces=tuple(namespace_ref(n) for n in facts.namespaces),
    )


def _interface_ref(interface: InterfaceFact) -> InterfaceRef:
    kind = "loopback" if interface.loopback else interface.kind or "device"
    return InterfaceRef(interface.name, kind, interface.up, interface.addresses)


def namespace_ref(space: NamespaceFacts) -> NamespaceRef:
    interfaces = space.interfaces
    return NamespaceRef(
        namespace=space.namespace, role=space.role, pid=space.pid,
        shares_audit_namespace=space.shares_audit_namespace, cgroup=space.cgroup,
        sockets=None if space.sockets is None else len(space.sockets),
        interfaces=None if interfaces is None else tuple(_interface_ref(i) for i in interfaces),
        routes=None if space.routes is None else len(space.routes), error=space.error,
    )  # fmt: skip

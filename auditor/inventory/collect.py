"""Gather every fact the checks read, once, into a frozen Facts."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import psutil

from auditor.inventory import (
    cli_env,
    egress_probe,
    exposure,
    gateway,
    gateway_chain,
    gpu,
    hardening,
    ide,
    integrity,
    live,
    netns,
    nft,
    processes,
    recorder,
    seal_recording,
    sockdiag,
    sockets,
)
from auditor.inventory.discovery import Located, locate
from auditor.inventory.engine_facts import engine_facts
from auditor.inventory.interface import (
    AuditOptions,
    CliUserEnv,
    EgressFacts,
    EgressRecording,
    EngineFacts,
    ExposureFacts,
    Facts,
    GatewayChainFacts,
    GatewayFacts,
    NamespaceFacts,
    PreviousAudit,
    ProcessFact,
    RecordedSource,
    SocketFact,
)
from auditor.inventory.profiles import PROFILES, profile
from auditor.inventory.systemd import systemd_running
from auditor.models import vulnbundle

# --watch samples the socket table every 20 ms: one netlink dump of thousands of sockets
# takes a few ms, and owners are read only for new sockets that leave the host
WATCH_INTERVAL_S = 0.02

Progress = Callable[[str], None]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclasses.dataclass
class WatchResult:
    sockets: list[SocketFact]
    processes: list[ProcessFact]
    samples: int
    intervals_ms: list[float] = dataclasses.field(default_factory=list)
    engine_namespace: bool = False  # the engine's own namespace was sampled too

    def median_interval_ms(self) -> float | None:
        return round(statistics.median(self.intervals_ms), 2) if self.intervals_ms else None


def _new_sockets(
    seen: set[tuple[object, ...]], spaces: Sequence[socket.socket] = ()
) -> list[SocketFact]:
    """Sockets of one sample not seen before; owners read for those leaving the host.

    `spaces`: sock_diag sockets opened in other namespaces (the engine's), sampled too."""
    table = sockets.leaving_table()
    for space in spaces:
        table += sockdiag.dump(leaving_only=True, sock=space)
    fresh = [s for s in table if sockets.watch_key(s) not in seen]
    seen.update(sockets.watch_key(s) for s in fresh)
    return list(sockets.resolve(tuple(fresh), lambda _: True))


def watch(
    seconds: float,
    seen: set[tuple[object, ...]],
    known_pids: set[int],
    interval_s: float = WATCH_INTERVAL_S,
    spaces: Sequence[socket.socket] = (),
) -> WatchResult:
    """Sample the sockets leaving the host every `interval_s` for `seconds`; keep new ones.

    Owners of new sockets that leave the host are read at once, while they still exist,
    so a short-lived child of the engine can still be tied to its parent. The real time
    between samples is recorded: a slow sample shows there, not as a silent gap.
    """
    result = WatchResult([], [], 0)
    start = time.monotonic()
    deadline, tick, last = start + seconds, start, None
    while (now := time.monotonic()) < deadline:
        if last is not None:
            result.intervals_ms.append((now - last) * 1000)
        last = now
        result.samples += 1
        for fact in _new_sockets(seen, spaces):
            result.sockets.append(fact)
            if fact.pid is not None and fact.pid not in known_pids:
                known_pids.add(fact.pid)
                with contextlib.suppress(psutil.Error):
                    result.processes.append(processes.read_process(fact.pid))
        # a late sample is followed by the next one at once, not by a burst that catches up
        tick = max(tick + interval_s, time.monotonic())
        time.sleep(max(0.0, min(tick, deadline) - time.monotonic()))
    return result


def _engine_diag(
    engine: EngineFacts | None,
    spaces: Sequence[NamespaceFacts],
    stack: contextlib.ExitStack,
    incomplete: list[str],
) -> list[socket.socket]:
    """A sock_diag socket inside the engine's namespace, when it is not the audit's."""
    own = next((n for n in spaces if n.role == "engine"), None)
    if engine is None or own is None or own.shares_audit_namespace or own.error:
        return []
    try:
        return [stack.enter_context(netns.diag_socket(own.pid))]
    except OSError as exc:
        incomplete.append(f"--watch cannot sample the engine's namespace {own.namespace}: {exc}")
        return []


def _egress(
    engine: EngineFacts | None,
    options: AuditOptions,
    previous: PreviousAudit | None,
    space: NamespaceFacts | None = None,
) -> EgressFacts:
    probe = None
    if options.egress_probe and engine is not None and engine.main is not None:
        main = engine.main
        uid = main.uid if main.uid is not None else 0
        gid = _gid_of(main.pid)
        started = _stamp()
        probe = egress_probe.probe(
            options.egress_probe, main.pid, uid, gid, in_engine_netns=engine.foreign_netns
        )
        probe = dataclasses.replace(probe, started_at=started, finished_at=_stamp())
    # read after the probe, so a rule's counter shows the probe's packet when it matched
    rules, error = nft.read_ruleset()
    recording: EgressRecording | None = None
    found: tuple[RecordedSource, ...] = ()
    if options.egress_log is not None:
        found, recording = recorder.sources(rules, options.egress_log, previous)
    sealed = None
    if engine is not None and space is not None and not space.shares_audit_namespace:
        sealed = seal_recording.collect(space, options.seal_log, previous)
    return EgressFacts(
        nft_rules=rules, nft_error=error, probe=probe, recording=recording,
        previous=previous, sources=found, sealed=sealed,
    )  # fmt: skip


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _gid_of(pid: int) -> int:
    try:
        return int(psutil.Process(pid).gids().real)
    except psutil.Error:
        return 0


def _socket_incomplete(privilege_root: bool, socks: tuple[SocketFact, ...]) -> list[str]:
    hidden = sockets.unowned(socks)
    if hidden and not privilege_root:
        return [f"{len(hidden)} socket(s) have no readable owner (not root)"]
    return []


@dataclasses.dataclass(frozen=True)
class _Observed:
    """The process and socket tables, the engine in them, and what --watch added."""

    processes: tuple[ProcessFact, ...]
    sockets: tuple[SocketFact, ...]
    watched: WatchResult
    engine: EngineFacts | None
    incomplete: tuple[str, ...]
    namespaces: tuple[NamespaceFacts, ...] = ()
    exposure: ExposureFacts | None = None


def _default_ports() -> set[int]:
    return {port for profile in PROFILES.values() for port in profile.default_ports}


def read_sockets(root: bool) -> tuple[SocketFact, ...]:
    """The socket table with the owners discovery needs: listeners on engines' default ports.

    Without root every readable owner is resolved, so a socket whose owner stays unknown
    is one this user cannot see, and the report says so.
    """
    table = sockets.table()
    if not root:
        return sockets.resolve(table, lambda _: True)
    ports = _default_ports()
    return sockets.resolve(table, lambda s: sockets.listening(s) and s.local_port in ports)


def _with_engine_owners(
    socks: tuple[SocketFact, ...], located: Located, table: tuple[ProcessFact, ...]
) -> tuple[SocketFact, ...]:
    """Owners of the engine's process tree: only the tree's own fds are read."""
    if located.main is None:
        return socks
    tree = processes.descendants(located.main, table)
    return sockets.resolve(socks, lambda _: True, [p.pid for p in tree])


def _with_port_owners(socks: tuple[SocketFact, ...], engine: EngineFacts) -> tuple[SocketFact, ...]:
    """Owners of every listener on the engine's port (OG-NET-02 names them)."""
    port = engine.port
    if port is None or port in _default_ports():
        return socks
    return sockets.resolve(socks, lambda s: sockets.listening(s) and s.local_port == port)


def _engine_and_namespaces(
    located: Located,
    table: tuple[ProcessFact, ...],
    socks: tuple[SocketFact, ...],
    progress: Progress,
) -> tuple[EngineFacts, tuple[NamespaceFacts, ...]]:
    """The engine's facts, read inside its namespace when it has its own, and the
    namespaces looked at for it (its own first, then other candidates')."""
    if located.main is None:
        return engine_facts(located, table, socks), ()
    progress("reading the engine's network namespace")
    tree = [p.pid for p in processes.descendants(located.main, table)]
    space = exposure.engine_namespace(located.main.pid, tree)
    own = socks
    if not space.shares_audit_namespace and space.sockets is not None:
        own = space.sockets
    try:
        engine = exposure.inside(space, lambda: engine_facts(located, table, own))
    except netns.NamespaceError as exc:
        # no tree listener in the audit's namespace: nothing is probed on its loopback
        engine = engine_facts(located, table, socks)
        if space.error is None:
            space = dataclasses.replace(space, error=str(exc.args[-1]), sockets=None,
                                        interfaces=None, routes=None)  # fmt: skip
    return engine, (space, *exposure.candidate_namespaces(engine, space))


def _observe(options: AuditOptions, root: bool, running: bool, progress: Progress) -> _Observed:
    progress("reading the process table")
    table = processes.snapshot()
    progress("reading sockets")
    socks = read_sockets(root)
    progress("locating the engine")
    located = locate(options, table.processes, socks, running)
    engine = None
    spaces: tuple[NamespaceFacts, ...] = ()
    host: ExposureFacts | None = None
    if located is not None:
        socks = _with_engine_owners(socks, located, table.processes)
        engine, spaces = _engine_and_namespaces(located, table.processes, socks, progress)
        socks = _with_port_owners(socks, engine)
        if engine.foreign_netns and spaces:
            socks, host = exposure.host_side(socks, spaces[0], table.processes)
    spaces = (exposure.audit_namespace(socks), *spaces)
    incomplete = [*table.incomplete, *_socket_incomplete(root, socks)]
    incomplete += [f"network namespace {n.namespace} ({n.role}): {n.error}" for n in spaces
                   if n.error]  # fmt: skip
    watched = WatchResult([], [], 0)
    all_processes = list(table.processes)
    if options.watch_seconds > 0:
        progress(f"watching sockets for {options.watch_seconds:g}s")
        seen = {sockets.watch_key(s) for space in spaces for s in space.sockets or ()}
        with contextlib.ExitStack() as stack:
            inside = _engine_diag(engine, spaces, stack, incomplete)
            watched = watch(
                options.watch_seconds, seen, {p.pid for p in all_processes}, spaces=inside
            )
        watched.engine_namespace = bool(inside)
        all_processes += watched.processes
        if engine is not None and engine.main is not None:
            engine = dataclasses.replace(
                engine, tree=processes.descendants(engine.main, all_processes)
            )
    if engine is not None:
        incomplete += _engine_incomplete(engine)
    return _Observed(tuple(all_processes), socks, watched, engine, tuple(incomplete), spaces, host)


def collect(
    options: AuditOptions,
    progress: Progress = lambda _: None,
    previous: PreviousAudit | None = None,
) -> Facts:
    """Every fact the checks read; `previous` is the egress baseline of the last audit."""
    privilege = sockets.privilege()
    running = systemd_running()
    seen = _observe(options, privilege.is_root, running, progress)
    engine = seen.engine
    space = next((n for n in seen.namespaces if n.role == "engine"), None)
    progress("reading egress enforcement, hardening and IDE settings")
    egress = _egress(engine, options, previous, space)
    hardened = hardening.collect(engine, options, running) if engine else None
    ide_facts = ide.collect(options.ide_users)
    if options.lock_path is not None:
        progress(f"verifying the engine and the model store against {options.lock_path}")
    return Facts(
        hostname=socket.gethostname(),
        collected_at=_now(),
        privilege=privilege,
        options=options,
        processes=seen.processes,
        sockets=seen.sockets,
        watched_sockets=tuple(seen.watched.sockets),
        engine=engine,
        systemd_running=running,
        incomplete=seen.incomplete,
        extra={
            "watch_samples": seen.watched.samples,
            "watch_interval_ms": seen.watched.median_interval_ms(),
            "watch_engine_namespace": seen.watched.engine_namespace,
        },
        egress=egress,
        hardening=hardened,
        ide=ide_facts,
        integrity=integrity.collect(options, engine),
        vulnerabilities=vulnbundle.select(options.lock_path),
        live=_asked(space, lambda: live.collect(engine)) if engine else None,
        served=_asked(space, lambda: live.served(engine, options)) if engine else None,
        gpu=gpu.collect(),
        cli_users=_cli_users(engine, options, seen.processes),
        namespaces=seen.namespaces,
        exposure=seen.exposure,
        gateway=_gateway(options, seen, progress),
        gateway_chain=_gateway_chain(seen),
    )


def _gateway(options: AuditOptions, seen: _Observed, progress: Progress) -> GatewayFacts | None:
    """The OG-GW probes, when a gateway is configured (--gateway, or the role's description)."""
    path = options.gateway
    if path is None and gateway.DEFAULT_DESCRIPTOR.exists():
        path = gateway.DEFAULT_DESCRIPTOR
    if path is None:
        return None
    progress(f"probing the gateway described in {path}")
    names = {p.pid: p.name for p in seen.processes}
    return gateway.collect(path, seen.engine, seen.sockets, names, _default_ports())


def _gateway_chain(seen: _Observed) -> GatewayChainFacts | None:
    """What ties host-side listeners on a sealed engine's port to it (OG-NET-02)."""
    engine = seen.engine
    if engine is None or not engine.foreign_netns:
        return None
    return gateway_chain.collect(seen.sockets, seen.processes, engine)


T = TypeVar("T")


def _asked(space: NamespaceFacts | None, ask: Callable[[], T]) -> T | None:
    """The engine's answer, asked from inside its namespace; None when that cannot be
    entered (its API is then not asked at all, never through the host's loopback)."""
    try:
        return exposure.inside(space, ask)
    except netns.NamespaceError:
        return None


def _cli_users(
    engine: EngineFacts | None, options: AuditOptions, table: tuple[ProcessFact, ...]
) -> tuple[CliUserEnv, ...]:
    if engine is None:
        return ()
    own = profile(engine.kind)
    return cli_env.collect(options.cli_users, own.agent_switches, table, own.is_cli)


def _engine_incomplete(engine: EngineFacts) -> list[str]:
    notes = []
    if engine.main is not None and engine.environ is None:
        notes.append(f"/proc/{engine.main.pid}/environ is unreadable (not root)")
    if engine.main is not None and engine.version is None:
        notes.append("the engine's version could not be determined")
    return notes

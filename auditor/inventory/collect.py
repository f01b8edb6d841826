"""Gather every fact the checks read, once, into a frozen Facts."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime

import psutil

from auditor.inventory import egress_probe, hardening, ide, integrity, nft, processes, sockets
from auditor.inventory.discovery import locate
from auditor.inventory.engine_facts import engine_facts
from auditor.inventory.interface import (
    AuditOptions,
    EgressFacts,
    EngineFacts,
    Facts,
    ProcessFact,
    SocketFact,
)
from auditor.inventory.systemd import systemd_running

WATCH_INTERVAL_S = 0.15

Progress = Callable[[str], None]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclasses.dataclass
class WatchResult:
    sockets: list[SocketFact]
    processes: list[ProcessFact]
    samples: int


def watch(
    seconds: float,
    seen: set[tuple[object, ...]],
    known_pids: set[int],
    interval_s: float = WATCH_INTERVAL_S,
) -> WatchResult:
    """Sample the socket table for `seconds`; keep sockets not seen before.

    Owners of new sockets are read at once, while they still exist, so a short-lived
    child of the engine can still be tied to its parent.
    """
    result = WatchResult([], [], 0)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result.samples += 1
        for fact in sockets.snapshot():
            key = sockets.socket_key(fact)
            if key in seen:
                continue
            seen.add(key)
            result.sockets.append(fact)
            if fact.pid is not None and fact.pid not in known_pids:
                known_pids.add(fact.pid)
                with contextlib.suppress(psutil.Error):
                    result.processes.append(processes.read_process(fact.pid))
        time.sleep(min(interval_s, max(0.0, deadline - time.monotonic())))
    return result


def _egress(engine: EngineFacts | None, options: AuditOptions) -> EgressFacts:
    probe = None
    if options.egress_probe and engine is not None and engine.main is not None:
        main = engine.main
        uid = main.uid if main.uid is not None else 0
        gid = _gid_of(main.pid)
        probe = egress_probe.probe(options.egress_probe, main.pid, uid, gid)
    # read after the probe, so a rule's counter shows the probe's packet when it matched
    rules, error = nft.read_ruleset()
    return EgressFacts(nft_rules=rules, nft_error=error, probe=probe)


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
    watched: tuple[SocketFact, ...]
    samples: int
    engine: EngineFacts | None
    incomplete: tuple[str, ...]


def _observe(options: AuditOptions, root: bool, running: bool, progress: Progress) -> _Observed:
    progress("reading the process table")
    table = processes.snapshot()
    progress("reading sockets")
    socks = sockets.snapshot()
    incomplete = [*table.incomplete, *_socket_incomplete(root, socks)]
    progress("locating the engine")
    located = locate(options, table.processes, socks, running)
    engine = engine_facts(located, table.processes, socks) if located else None
    watched: tuple[SocketFact, ...] = ()
    samples = 0
    all_processes = list(table.processes)
    if options.watch_seconds > 0:
        progress(f"watching sockets for {options.watch_seconds:g}s")
        seen = {sockets.socket_key(s) for s in socks}
        result = watch(options.watch_seconds, seen, {p.pid for p in all_processes})
        watched, samples = tuple(result.sockets), result.samples
        all_processes += result.processes
        if engine is not None and engine.main is not None:
            engine = dataclasses.replace(
                engine, tree=processes.descendants(engine.main, all_processes)
            )
    if engine is not None:
        incomplete += _engine_incomplete(engine)
    return _Observed(tuple(all_processes), socks, watched, samples, engine, tuple(incomplete))


def collect(options: AuditOptions, progress: Progress = lambda _: None) -> Facts:
    privilege = sockets.privilege()
    running = systemd_running()
    seen = _observe(options, privilege.is_root, running, progress)
    engine = seen.engine
    progress("reading egress enforcement, hardening and IDE settings")
    egress = _egress(engine, options)
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
        watched_sockets=seen.watched,
        engine=engine,
        systemd_running=running,
        incomplete=seen.incomplete,
        extra={"watch_samples": seen.samples},
        egress=egress,
        hardening=hardened,
        ide=ide_facts,
        integrity=integrity.collect(options, engine),
    )


def _engine_incomplete(engine: EngineFacts) -> list[str]:
    notes = []
    if engine.main is not None and engine.environ is None:
        notes.append(f"/proc/{engine.main.pid}/environ is unreadable (not root)")
    if engine.foreign_netns:
        notes.append("the engine runs in another network namespace: its sockets are not visible")
    if engine.main is not None and engine.version is None:
        notes.append("the engine's version could not be determined")
    return notes

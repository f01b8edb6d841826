"""Find the engine: by systemd unit, by process, by port, or by the pid the user gave.

Facts only: which process (or unit) is the engine. What it is configured to do is read
by auditor.inventory.engine_facts; whether any of that is acceptable is for the checks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psutil

from auditor.engine_kind import EngineKind
from auditor.errors import InputError
from auditor.inventory import systemd
from auditor.inventory.interface import AuditOptions, ProcessFact, SocketFact, UnitFacts
from auditor.inventory.processes import by_pid, read_process
from auditor.inventory.profiles import PROFILES

KINDS: tuple[EngineKind, ...] = tuple(PROFILES)


@dataclass(frozen=True)
class Located:
    kind: EngineKind
    discovered_by: str  # "unit", "process", "port", "pid"
    main: ProcessFact | None
    unit: UnitFacts | None
    others: tuple[int, ...] = ()


def classify(fact: ProcessFact) -> EngineKind | None:
    """Which engine a process is, from its name, executable and command line."""
    return next((kind for kind, p in PROFILES.items() if p.is_server(fact)), None)


def _is_ancestor_candidate(
    fact: ProcessFact, candidates: set[int], table: Mapping[int, ProcessFact]
) -> bool:
    seen: set[int] = set()
    parent = table.get(fact.ppid)
    while parent is not None and parent.pid not in seen:
        if parent.pid in candidates:
            return True
        seen.add(parent.pid)
        parent = table.get(parent.ppid)
    return False


def find_by_process(
    processes: Sequence[ProcessFact], kinds: Sequence[EngineKind]
) -> tuple[ProcessFact, EngineKind, tuple[int, ...]] | None:
    """The oldest engine-looking process that is not itself a child of another one (of any
    kind: Ollama's llama-server runners are not llama.cpp engines)."""
    matches = [(p, kind) for p in processes if (kind := classify(p)) is not None]
    pids = {p.pid for p, _ in matches}
    table = by_pid(processes)
    roots = [
        (p, k) for p, k in matches if k in kinds and not _is_ancestor_candidate(p, pids, table)
    ]
    if not roots:
        return None
    roots.sort(key=lambda item: (item[0].create_time, item[0].pid))
    main, kind = roots[0]
    return main, kind, tuple(p.pid for p, _ in roots[1:])


def find_by_port(
    sockets: Sequence[SocketFact], processes: Sequence[ProcessFact], kinds: Sequence[EngineKind]
) -> tuple[ProcessFact, EngineKind] | None:
    table = by_pid(processes)
    for kind in kinds:
        for port in PROFILES[kind].default_ports:
            for sock in sockets:
                listening = sock.protocol == "tcp" and sock.state == psutil.CONN_LISTEN
                if listening and sock.local_port == port and sock.pid is not None:
                    owner = table.get(sock.pid)
                    if owner is not None:
                        return owner, kind
    return None


def _from_pid(options: AuditOptions) -> Located:
    pid = options.engine_pid
    assert pid is not None
    try:
        main = read_process(pid)
    except psutil.NoSuchProcess:
        raise InputError(f"--engine-pid {pid}: no such process") from None
    except psutil.AccessDenied:
        raise InputError(f"--engine-pid {pid}: process cannot be read (run as root)") from None
    kind = options.engine or classify(main)
    if kind is None:
        raise InputError(
            f"--engine-pid {pid} ({main.name}) looks like neither {' nor '.join(KINDS)}; "
            "say which with --engine"
        )
    return Located(kind, "pid", main, None)


def _from_units(kinds: Sequence[EngineKind], table: Mapping[int, ProcessFact]) -> Located | None:
    for kind in kinds:
        for name in PROFILES[kind].units:
            unit = systemd.read_unit(name, use_systemctl=True)
            if unit is None:
                continue
            main_pid = int(unit.properties.get("MainPID", "0") or 0)
            main = table.get(main_pid)
            if main is None and main_pid:
                with contextlib.suppress(psutil.Error):
                    main = read_process(main_pid)
            return Located(kind, "unit", main, unit)
    return None


def unit_for(kind: EngineKind, use_systemctl: bool) -> UnitFacts | None:
    for name in PROFILES[kind].units:
        unit = systemd.read_unit(name, use_systemctl=use_systemctl)
        if unit is not None:
            return unit
    return None


def locate(
    options: AuditOptions,
    processes: Sequence[ProcessFact],
    sockets: Sequence[SocketFact],
    systemd_running: bool,
) -> Located | None:
    kinds = (options.engine,) if options.engine else KINDS
    if options.engine_pid is not None:
        found = _from_pid(options)
    elif systemd_running and (by_unit := _from_units(kinds, by_pid(processes))) is not None:
        return by_unit
    elif (by_process := find_by_process(processes, kinds)) is not None:
        main, kind, others = by_process
        found = Located(kind, "process", main, None, others)
    elif (by_port := find_by_port(sockets, processes, kinds)) is not None:
        found = Located(by_port[1], "port", by_port[0], None)
    else:
        # not running: a unit on disk still says which engine this workstation serves
        for kind in kinds:
            unit = unit_for(kind, systemd_running)
            if unit is not None:
                return Located(kind, "unit", None, unit)
        return None
    return Located(
        found.kind, found.discovered_by, found.main,
        unit_for(found.kind, systemd_running), found.others,
    )  # fmt: skip

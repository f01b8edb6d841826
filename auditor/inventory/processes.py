"""The process table: identity is pid + create time, unreadable entries are recorded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import psutil

from auditor.inventory.interface import ProcessFact


@dataclass(frozen=True)
class ProcessTable:
    processes: tuple[ProcessFact, ...]
    incomplete: tuple[str, ...]  # vanished mid-scan, or fields that could not be read


def _field(proc: psutil.Process, getter: str) -> object:
    try:
        return getattr(proc, getter)()
    except psutil.AccessDenied:
        return None
    except psutil.ZombieProcess:
        return None


def read_process(pid: int) -> ProcessFact:
    """One process's facts; raises psutil.NoSuchProcess if it is gone.

    Fields the caller may not read (exe of another user's process without root)
    are None rather than an exception: the rest is still worth recording.
    """
    proc = psutil.Process(pid)
    with proc.oneshot():
        create_time = proc.create_time()
        ppid = proc.ppid()
        name = proc.name()
        exe = _field(proc, "exe")
        cmdline = _field(proc, "cmdline")
        username = _field(proc, "username")
        uids = _field(proc, "uids")
    return ProcessFact(
        pid=pid,
        create_time=create_time,
        ppid=ppid,
        name=name,
        exe=str(exe) if exe else None,
        cmdline=tuple(cmdline) if isinstance(cmdline, list) else (),
        username=str(username) if username is not None else None,
        uid=int(uids.real) if uids is not None else None,  # type: ignore[attr-defined]
    )


def snapshot() -> ProcessTable:
    facts: list[ProcessFact] = []
    vanished: list[int] = []
    denied: list[int] = []
    for pid in psutil.pids():
        try:
            fact = read_process(pid)
        except psutil.NoSuchProcess:
            vanished.append(pid)  # exited between listing and reading: normal, but said
            continue
        except psutil.AccessDenied:
            denied.append(pid)
            continue
        facts.append(fact)
    incomplete = []
    if vanished:
        incomplete.append(
            f"{len(vanished)} process(es) vanished during the scan: {_pids(vanished)}"
        )
    if denied:
        incomplete.append(f"{len(denied)} process(es) could not be read: {_pids(denied)}")
    no_exe = [f.pid for f in facts if f.exe is None and f.cmdline]
    if no_exe:
        count = len(no_exe)
        incomplete.append(
            f"executable unreadable for {count} process(es) (not root): {_pids(no_exe)}"
        )
    return ProcessTable(tuple(facts), tuple(incomplete))


def _pids(pids: list[int], limit: int = 20) -> str:
    shown = ", ".join(str(p) for p in pids[:limit])
    return shown + (f", … (+{len(pids) - limit})" if len(pids) > limit else "")


def children_map(processes: Iterable[ProcessFact]) -> dict[int, list[ProcessFact]]:
    children: dict[int, list[ProcessFact]] = {}
    for fact in processes:
        children.setdefault(fact.ppid, []).append(fact)
    return children


def descendants(root: ProcessFact, processes: Iterable[ProcessFact]) -> tuple[ProcessFact, ...]:
    """root and every process below it, parents before children.

    A child whose create time is before its parent's belongs to an earlier owner
    of a reused pid and is not part of this tree.
    """
    children = children_map(processes)
    tree = [root]
    queue = [root]
    while queue:
        parent = queue.pop(0)
        for child in sorted(children.get(parent.pid, []), key=lambda f: f.pid):
            if child.pid != parent.pid and child.create_time >= parent.create_time:
                tree.append(child)
                queue.append(child)
    return tuple(tree)


def by_pid(processes: Iterable[ProcessFact]) -> Mapping[int, ProcessFact]:
    return {fact.pid: fact for fact in processes}

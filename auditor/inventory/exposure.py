"""The network namespaces an audit looks at, and what the host side does toward them.

The engine may run in a network namespace of its own (a Docker, Podman or nspawn
container, a unit with PrivateNetwork=): its sockets and interfaces are read from inside
(`netns.read_namespace`). The host side is then what can carry a connection into it:
every listener of the audit's namespace with its owner and that owner's own namespace
(docker-proxy, rootlessport, systemd-socket-proxyd and any other forwarder show up
here), and the destination-NAT rules of nftables (iptables-nft's included).
"""

from __future__ import annotations

import dataclasses
import errno
import os
from collections.abc import Callable, Iterable
from typing import TypeVar

from auditor.inventory import netns, nft, sockets
from auditor.inventory.interface import (
    EngineFacts,
    ExposureFacts,
    NamespaceFacts,
    ProcessFact,
    SocketFact,
)

T = TypeVar("T")


def _cgroup(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    paths = [line.split(":", 2)[2] for line in lines if line.count(":") >= 2]
    return next((p for p in paths if p not in ("", "/")), paths[0] if paths else None)


def audit_namespace(table: tuple[SocketFact, ...]) -> NamespaceFacts:
    """The audit's own namespace: its socket table is the one already read."""
    own = netns.namespace_of(os.getpid())
    return NamespaceFacts(
        namespace=own or "/proc/self/ns/net", pid=os.getpid(), role="audit",
        shares_audit_namespace=True, sockets=table, interfaces=None, routes=None,
        error=None if own else "the audit's own namespace link is unreadable",
    )  # fmt: skip


def engine_namespace(pid: int, tree: Iterable[int]) -> NamespaceFacts:
    """The engine's namespace with its interfaces and routes; owners among its tree."""
    return _with_cgroup(netns.read_namespace(pid, role="engine", owners=tree))


def candidate_namespaces(engine: EngineFacts, own: NamespaceFacts) -> tuple[NamespaceFacts, ...]:
    """The namespaces of other engine-looking processes, each once, unless it is the engine's."""
    found: list[NamespaceFacts] = []
    seen = {own.namespace}
    for pid in engine.other_candidates:
        other = netns.read_namespace(pid, role="other engine candidate", owners=[pid], links=False)
        if other.namespace not in seen:
            seen.add(other.namespace)
            found.append(_with_cgroup(other))
    return tuple(found)


def inside(space: NamespaceFacts | None, work: Callable[[], T]) -> T:
    """`work()` in the engine's namespace when it is not the audit's (its loopback probes
    then reach the engine, not whatever listens on the host's loopback).

    Raises NamespaceError when that namespace is its own and cannot be entered (or was
    not read): the work must then not run here, where it would ask someone else."""
    if space is not None and space.shares_audit_namespace:
        return work()
    if space is None or space.error is not None:
        why = space.error if space is not None else "not read"
        raise netns.NamespaceError(errno.EPERM, f"the engine's network namespace: {why}")
    return netns.in_namespace(space.pid, work)


def _with_cgroup(facts: NamespaceFacts) -> NamespaceFacts:
    return dataclasses.replace(facts, cgroup=_cgroup(facts.pid))


def namespace_addresses(space: NamespaceFacts) -> list[str]:
    """Every address on an interface of the namespace other than loopback, in order."""
    found: list[str] = []
    for interface in space.interfaces or ():
        if not interface.loopback:
            found += [a.split("/", 1)[0] for a in interface.addresses]
    return found


def _same_address(a: str | None, addresses: Iterable[str]) -> bool:
    parsed = sockets.normalized_ip(a)
    return parsed is not None and str(parsed) in addresses


def host_side(
    table: tuple[SocketFact, ...],
    engine_space: NamespaceFacts,
    processes: Iterable[ProcessFact] = (),
) -> tuple[tuple[SocketFact, ...], ExposureFacts]:
    """Owners of every host-side listener and of connections into the engine's namespace,
    the namespace of each owner and of each owner's children, and the destination-NAT rules."""
    addresses = namespace_addresses(engine_space)
    owned = sockets.resolve(
        table,
        lambda s: sockets.listening(s) or _same_address(s.remote_address, addresses),
    )
    owners = {s.pid for s in owned if s.pid is not None}
    children = {p.pid for p in processes if p.ppid in owners}
    spaces: dict[int, str] = {}
    for pid in owners | children:
        space = netns.namespace_of(pid)
        if space is not None:
            spaces[pid] = space
    rules, error = nft.read_nat()
    return owned, ExposureFacts(owner_namespaces=spaces, nat_rules=rules, nat_error=error)

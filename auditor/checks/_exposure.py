"""How the host side publishes an engine that runs in another network namespace.

A publication is a path from an address of the audit's (host) namespace to the engine's
listener in its own namespace:
- a forwarder: a host-side listener whose owner joined the engine's namespace (or has a
  child there), names one of the engine namespace's addresses in its command line
  (docker-proxy's -container-ip, socat's TCP:ADDR:PORT, systemd-socket-proxyd's target),
  or holds a connection to one of them on the engine's port;
- a destination-NAT rule of nftables (iptables-nft's included) to one of those addresses
  and the engine's port.
A known forwarder (rootlessport, slirp4netns, pasta, …) listening beyond loopback whose
target cannot be tied to a namespace, and a NAT rule whose destination nft cannot show,
are `unknown`: they may publish the engine, so no pass can be given over them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from auditor.checks._common import EngineView, is_bound, tree_pids
from auditor.inventory.exposure import namespace_addresses
from auditor.inventory.interface import Facts, NamespaceFacts, NatRule, ProcessFact, SocketFact
from auditor.inventory.processes import by_pid
from auditor.inventory.sockets import is_loopback

# processes whose job is carrying connections into containers
KNOWN_FORWARDERS = frozenset({
    "docker-proxy", "rootlessport", "rootlessport-child", "slirp4netns", "pasta",
    "pasta.avx2", "systemd-socket-proxyd", "socat", "rootlesskit", "conmon", "gvproxy",
})  # fmt: skip


@dataclass(frozen=True)
class Publication:
    host: str  # the host-side address, "0.0.0.0:11434" or "every address:11434"
    how: str  # what carries it and why it is known to lead to the engine
    loopback_only: bool  # reachable from this host only
    socket: SocketFact | None = None  # the forwarder's host-side listener; None: a NAT rule


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def container_addresses(sock: SocketFact, space: NamespaceFacts) -> list[str]:
    """The addresses a listener in `space` answers on (all of them for a wildcard bind)."""
    try:
        bound = ipaddress.ip_address(sock.local_address.split("%", 1)[0])
    except ValueError:
        return [sock.local_address]
    if not bound.is_unspecified:
        return [sock.local_address]
    addresses = namespace_addresses(space)
    if bound.version == 4:
        addresses = [a for a in addresses if ":" not in a]
    return addresses


def _names_target(process: ProcessFact, addresses: Iterable[str], port: int) -> str | None:
    """The engine-namespace address the command line names with the engine's port: as
    ADDR:PORT or [ADDR]:PORT inside one word (socat, systemd-socket-proxyd), or as two
    words of their own (docker-proxy's -container-ip ADDR … -container-port PORT)."""
    words = process.cmdline
    for address in addresses:
        edge = r"[\w.:]" if ":" in address else r"[\w.]"  # an IPv6 address may hold ":"
        joined = rf"(?<!{edge})(?:{re.escape(address)}|\[{re.escape(address)}\]):{port}(?!\w)"
        if any(re.search(joined, word) for word in words):
            return address
        if address in words and str(port) in words:
            return address
    return None


def _forwarder_reason(
    sock: SocketFact, facts: Facts, view: EngineView, addresses: list[str]
) -> str | None:
    """Why the owner of host-side listener `sock` is known to lead into the engine's namespace."""
    exposure, space, port = facts.exposure, view.space, view.engine.port
    if sock.pid is None or exposure is None or space is None or port is None:
        return None
    table = by_pid(facts.processes)
    owner = table.get(sock.pid)
    name = owner.name if owner else "?"
    family = [sock.pid, *(p.pid for p in facts.processes if p.ppid == sock.pid)]
    joined = [p for p in family if exposure.owner_namespaces.get(p) == space.namespace]
    if joined:
        who = "it" if joined[0] == sock.pid else f"its child pid {joined[0]}"
        return f"{name} pid {sock.pid}: {who} runs in the engine's namespace"
    if owner is not None and (target := _names_target(owner, addresses, port)):
        return f"{name} pid {sock.pid}: its command line forwards to {_host(target)}:{port}"
    for other in facts.sockets:
        if (other.pid == sock.pid and other.remote_port == port
                and other.remote_address in addresses):  # fmt: skip
            return f"{name} pid {sock.pid}: connected to {_host(other.remote_address)}:{port}"
    return None


def _covers(ranges: tuple[tuple[int, int], ...] | None, port: int) -> bool:
    return ranges is None or any(low <= port <= high for low, high in ranges)


def _ports_text(ranges: tuple[tuple[int, int], ...] | None) -> str:
    if ranges is None:
        return "any port"
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def _nat_publication(rule: NatRule, addresses: list[str], port: int) -> Publication | None:
    if rule.action != "dnat" or rule.to_address not in addresses:
        return None
    if rule.to_port is not None and rule.to_port != port:
        return None
    if rule.to_port is None and not _covers(rule.dport_ranges, port):
        return None
    host = rule.daddr or "every address"
    local = rule.hook == "output" or (rule.daddr is not None and is_loopback(rule.daddr))
    where = f"nft {rule.family} {rule.table} {rule.chain} handle {rule.handle}"
    return Publication(
        host=f"{_host(host)}:{_ports_text(rule.dport_ranges)}",
        how=f"{where} (hook {rule.hook or 'jumped to'}): {rule.text}",
        loopback_only=local,
    )


@dataclass(frozen=True)
class Exposure:
    publications: tuple[Publication, ...]
    unknown: tuple[str, ...]  # paths that may lead to the engine but cannot be tied to it


def host_exposure(facts: Facts, view: EngineView) -> Exposure:
    """Every host-side path to the foreign engine's namespace, and what cannot be judged."""
    space, port, exposure = view.space, view.engine.port, facts.exposure
    if not view.foreign or space is None or port is None:
        return Exposure((), ())
    addresses = namespace_addresses(space)
    pids = tree_pids(view.engine)
    found: list[Publication] = []
    unknown: list[str] = []
    names = {p.pid: p.name for p in facts.processes}
    for sock in facts.sockets:
        if sock.pid in pids or not is_bound(sock) or sock.protocol != "tcp":
            continue
        reason = _forwarder_reason(sock, facts, view, addresses)
        where = f"{_host(sock.local_address)}:{sock.local_port}"
        if reason is not None:
            found.append(Publication(where, reason, is_loopback(sock.local_address), sock))
        elif names.get(sock.pid or -1) in KNOWN_FORWARDERS and not is_loopback(sock.local_address):
            unknown.append(
                f"{names[sock.pid or -1]} pid {sock.pid} listens on {where}; "
                "where it forwards cannot be read"
            )
    if exposure is None or exposure.nat_rules is None:
        why = exposure.nat_error if exposure else "not collected"
        unknown.append(f"the nftables ruleset could not be read ({why}): DNAT unknown")
        return Exposure(tuple(found), tuple(unknown))
    for rule in exposure.nat_rules:
        if rule.opaque:
            unknown.append(
                f"nft {rule.family} {rule.table} {rule.chain} handle {rule.handle}: "
                f"{rule.action} to a destination nft cannot show ({rule.text})"
            )
        elif (publication := _nat_publication(rule, addresses, port)) is not None:
            found.append(publication)
    return Exposure(tuple(found), tuple(unknown))

"""Whether a network namespace has a path out, from its interfaces and routes.

A packet leaves a namespace only through an interface a route sends it to. Interfaces
that lead nowhere: loopback; a dummy device (it drops whatever it is given); a veth
pair with both ends in the namespace and neither enslaved to a bridge (what goes in one
end comes out of the other, inside). Any other interface with a route that sends packets
through it (unicast, broadcast or multicast, in any table) is a path out; so is a route
whose device cannot be named (a nexthop object, a route with no device).
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.inventory.interface import InterfaceFact, NamespaceFacts, RouteFact

# route types that put a packet on the route's device
SENDING = frozenset({"unicast", "broadcast", "multicast"})


@dataclass(frozen=True)
class InterfaceVerdict:
    interface: InterfaceFact
    sink: str | None  # why it leads nowhere; None: it is not a sink
    routes_out: tuple[RouteFact, ...]  # sending routes through it (empty for a sink)


def _sink(interface: InterfaceFact, by_index: dict[int, InterfaceFact]) -> str | None:
    if interface.loopback:
        return "loopback: delivers back into this namespace"
    if interface.master is not None:
        return None  # enslaved: its bridge or bond decides where packets go
    if interface.kind == "dummy":
        return "dummy device: drops every packet it is given"
    peer = by_index.get(interface.peer_index) if interface.peer_index is not None else None
    if (
        interface.kind == "veth" and interface.peer_netnsid is None and peer is not None
        and peer.kind == "veth" and peer.peer_index == interface.index and peer.master is None
    ):  # fmt: skip
        return f"veth whose peer {peer.name} is in this namespace: leads back into it"
    return None


def describe_route(route: RouteFact) -> str:
    via = f" via {route.gateway}" if route.gateway else ""
    dev = f" dev {','.join(route.devices)}" if route.devices else ""
    nh = f" nhid {route.nexthop_id}" if route.nexthop_id is not None else ""
    return f"{route.family} {route.type} {route.destination}{via}{dev}{nh} table {route.table}"


def judge(space: NamespaceFacts) -> tuple[list[InterfaceVerdict], list[RouteFact]]:
    """Each interface's verdict, and the sending routes whose device is unknown."""
    interfaces = space.interfaces or ()
    by_index = {i.index: i for i in interfaces}
    sending = [r for r in space.routes or () if r.type in SENDING]
    names = {i.name for i in interfaces}
    unnamed = [r for r in sending if not r.devices or any(d not in names for d in r.devices)]
    verdicts = []
    for interface in interfaces:
        sink = _sink(interface, by_index)
        out = () if sink else tuple(r for r in sending if interface.name in r.devices)
        verdicts.append(InterfaceVerdict(interface, sink, out))
    return verdicts, unnamed


def describe_interface(verdict: InterfaceVerdict) -> str:
    i = verdict.interface
    kind = "loopback" if i.loopback else i.kind or f"device (ARPHRD {i.link_type})"
    state = "up" if i.up else "down"
    addresses = " ".join(i.addresses) or "no address"
    elsewhere = "" if i.peer_netnsid is None else f", peer in namespace id {i.peer_netnsid}"
    counters = f"; tx {i.tx_packets}, rx {i.rx_packets} packets"
    head = f"{kind}, {state}, {addresses}{elsewhere}{counters}"
    if verdict.sink:
        return f"{head}: {verdict.sink}"
    if verdict.routes_out:
        return f"{head}: LEADS OUT, " + "; ".join(describe_route(r) for r in verdict.routes_out)
    return f"{head}: no route sends packets through it"

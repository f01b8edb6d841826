"""OG-NET-01/02/03/06 for an engine in another network namespace, from recorded facts."""

from __future__ import annotations

import dataclasses
import json

import pytest

from auditor.checks.net import (
    engine_listens_on_loopback,
    engine_namespace_has_no_path_out,
    no_remote_connection_from_engine,
    nothing_else_on_engine_port,
)
from auditor.inventory import nft
from auditor.inventory.interface import (
    AuditOptions,
    ExposureFacts,
    Facts,
    InterfaceFact,
    NamespaceFacts,
    NatRule,
    RouteFact,
    SocketFact,
)
from tests.unit.audit_facts import ENGINE_PID, engine, facts, proc, sock

ENGINE_NS, HOST_NS = "net:[4026532291]", "net:[4026531840]"
CONTAINER = "172.17.0.2"
LO = InterfaceFact(1, "lo", None, 772, True, True, "UNKNOWN", ("127.0.0.1/8", "::1/128"),
                   rx_packets=0, tx_packets=0)  # fmt: skip
ETH0 = InterfaceFact(
    7, "eth0", "veth", 1, True, False, "UP", (f"{CONTAINER}/16",), peer_index=8, peer_netnsid=0,
    rx_packets=3, tx_packets=4,
)  # fmt: skip
DEFAULT = RouteFact("ipv4", "default", 254, "unicast", ("eth0",), "172.17.0.1")
LOCAL = RouteFact("ipv4", "127.0.0.0/8", 255, "local", ("lo",))
FORWARDER_PID = 700


def space(
    socks: tuple[SocketFact, ...],
    interfaces: tuple[InterfaceFact, ...] = (LO, ETH0),
    routes: tuple[RouteFact, ...] = (DEFAULT, LOCAL),
    **changes: object,
) -> NamespaceFacts:
    base = NamespaceFacts(
        namespace=ENGINE_NS, pid=ENGINE_PID, role="engine", shares_audit_namespace=False,
        sockets=socks, interfaces=interfaces, routes=routes, error=None,
        cgroup="/system.slice/docker-3f2a.scope",
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def container(
    bind: str = "0.0.0.0",
    host: tuple[SocketFact, ...] = (),
    nat: tuple[NatRule, ...] | None = (),
    owners: dict[int, str] | None = None,
    **changes: object,
) -> Facts:
    forwarder = proc(
        FORWARDER_PID, name="docker-proxy",
        cmdline=("/usr/bin/docker-proxy", "-proto", "tcp", "-host-ip", "0.0.0.0", "-host-port",
                 "11434", "-container-ip", CONTAINER, "-container-port", "11434"),
    )  # fmt: skip
    base = facts(
        engine=engine(foreign_netns=True),
        sockets=host,
        processes=(*facts().processes, forwarder),
        namespaces=(space((sock(bind, 11434),)),),
        exposure=ExposureFacts(owners or {}, nat, None if nat is not None else "not root"),
    )
    return dataclasses.replace(base, **changes)


def published() -> tuple[SocketFact, ...]:
    return (sock("0.0.0.0", 11434, pid=FORWARDER_PID),)


def test_docker_layout_fails_naming_the_host_and_the_container_address() -> None:
    result = engine_listens_on_loopback(container(host=published()))
    assert result.status == "fail"
    assert (
        "0.0.0.0:11434" in result.summary and f"container address(es) {CONTAINER}" in result.summary
    )
    assert f"forwards to {CONTAINER}:11434" in result.summary
    assert ENGINE_NS in result.summary


def test_a_forwarder_into_the_engine_is_not_another_listener() -> None:
    result = nothing_else_on_engine_port(container(host=published()))
    assert result.status == "pass"
    labels = {e.label for e in result.evidence}
    assert "forwards into the engine's namespace" in labels


def test_a_host_squatter_on_the_engine_port_fails_og_net_02() -> None:
    squatter = (sock("127.0.0.1", 11434, pid=9999),)
    result = nothing_else_on_engine_port(container(bind="127.0.0.1", host=squatter))
    assert result.status == "fail" and "pid 9999" in result.summary


def test_dnat_to_the_container_fails_with_both_addresses() -> None:
    rule = NatRule(
        "inet", "netavark", "pre", "prerouting", 4, "dnat", CONTAINER, 11434,
        ((11434, 11434),), "198.18.60.1", False, "ip daddr 198.18.60.1 dnat to 172.17.0.2",
    )  # fmt: skip
    result = engine_listens_on_loopback(container(nat=(rule,)))
    assert result.status == "fail"
    assert "198.18.60.1:11434" in result.summary and CONTAINER in result.summary


def test_dnat_elsewhere_or_to_another_port_does_not_count() -> None:
    other = NatRule("ip", "nat", "pre", "prerouting", 1, "dnat", "172.17.0.9", 11434, None,
                    None, False, "")  # fmt: skip
    port = dataclasses.replace(other, to_address=CONTAINER, to_port=80)
    result = engine_listens_on_loopback(container(bind="127.0.0.1", nat=(other, port)))
    assert result.status == "pass", result


def test_an_opaque_dnat_or_unreadable_ruleset_is_no_pass() -> None:
    opaque = NatRule("ip", "nat", "DOCKER", None, 9, "xt DNAT", None, None, None, None, True, "")
    result = engine_listens_on_loopback(container(bind="127.0.0.1", nat=(opaque,)))
    assert result.status == "error" and "cannot show" in result.summary
    result = engine_listens_on_loopback(container(bind="127.0.0.1", nat=None))
    assert result.status == "error" and "could not be read" in result.summary


def test_a_known_forwarder_that_cannot_be_tied_is_no_pass() -> None:
    rootless = proc(FORWARDER_PID, name="rootlessport", cmdline=("rootlessport",))
    base = container(bind="127.0.0.1", host=(sock("0.0.0.0", 8080, pid=FORWARDER_PID),))
    result = engine_listens_on_loopback(
        dataclasses.replace(base, processes=(*facts().processes, rootless))
    )
    assert result.status == "error" and "rootlessport" in result.summary


def test_a_listener_that_joined_the_engine_namespace_publishes_it() -> None:
    joined = proc(FORWARDER_PID, name="systemd-socket-proxyd", cmdline=("proxyd", "127.0.0.1:1"))
    base = container(
        bind="127.0.0.1", host=(sock("0.0.0.0", 8080, pid=FORWARDER_PID),),
        owners={FORWARDER_PID: ENGINE_NS},
    )  # fmt: skip
    result = engine_listens_on_loopback(
        dataclasses.replace(base, processes=(*facts().processes, joined))
    )
    assert result.status == "fail" and "runs in the engine's namespace" in result.summary
    loopback = dataclasses.replace(base, sockets=(sock("127.0.0.1", 8080, pid=FORWARDER_PID),))
    result = engine_listens_on_loopback(
        dataclasses.replace(loopback, processes=(*facts().processes, joined))
    )
    assert result.status == "pass" and "published on loopback only" in result.summary


def test_loopback_engine_unpublished_passes_every_socket_control() -> None:
    clean = container(bind="127.0.0.1")
    for check in (engine_listens_on_loopback, nothing_else_on_engine_port,
                  no_remote_connection_from_engine):  # fmt: skip
        result = check(clean)
        assert result.status == "pass", (check, result)


def test_connection_out_of_the_engine_namespace_fails_og_net_03() -> None:
    leaving = sock("172.17.0.2", 40000, state="ESTABLISHED", remote="203.0.113.9", rport=443)
    base = container(bind="127.0.0.1")
    spaces = (space((sock("127.0.0.1", 11434), leaving)),)
    result = no_remote_connection_from_engine(dataclasses.replace(base, namespaces=spaces))
    assert result.status == "fail" and ENGINE_NS in result.summary


@pytest.mark.parametrize(
    "check",
    [engine_listens_on_loopback, nothing_else_on_engine_port, no_remote_connection_from_engine,
     engine_namespace_has_no_path_out],
)  # fmt: skip
def test_an_unreadable_engine_namespace_is_an_error_with_the_reason(check: object) -> None:
    why = "setns into /proc/4242/ns/net: Operation not permitted (needs CAP_SYS_ADMIN)"
    unread = space(None, None, None, error=why)  # type: ignore[arg-type]
    result = check(container(namespaces=(unread,)))  # type: ignore[operator]
    assert result.status == "error" and "CAP_SYS_ADMIN" in result.summary


# ---------------------------------------------------------------- OG-NET-06


def sealed(*interfaces: InterfaceFact, routes: tuple[RouteFact, ...] = (LOCAL,)) -> Facts:
    return container(bind="127.0.0.1", namespaces=(space((), (LO, *interfaces), routes),))


def test_loopback_only_passes_and_names_each_interface() -> None:
    result = engine_namespace_has_no_path_out(sealed())
    assert result.status == "pass" and ENGINE_NS in result.summary
    assert any(e.label == "interface lo" and "loopback" in e.value for e in result.evidence)


def test_a_veth_with_a_route_out_fails() -> None:
    result = engine_namespace_has_no_path_out(sealed(ETH0, routes=(LOCAL, DEFAULT)))
    assert result.status == "fail" and "eth0" in result.summary
    value = next(e.value for e in result.evidence if e.label == "interface eth0")
    assert "LEADS OUT" in value and "default via 172.17.0.1" in value


def test_a_dummy_sink_and_a_closed_veth_pair_lead_nowhere() -> None:
    dummy = InterfaceFact(2, "sink0", "dummy", 1, True, False, "UNKNOWN", ("10.255.0.1/24",))
    a = InterfaceFact(3, "loop0", "veth", 1, True, False, "UP", (), peer_index=4)
    b = InterfaceFact(4, "loop1", "veth", 1, True, False, "UP", (), peer_index=3)
    routes = (
        LOCAL, RouteFact("ipv4", "default", 254, "unicast", ("sink0",)),
        RouteFact("ipv4", "10.0.0.0/8", 254, "unicast", ("loop0",)),
    )  # fmt: skip
    result = engine_namespace_has_no_path_out(sealed(dummy, a, b, routes=routes))
    assert result.status == "pass", result
    values = {e.label: e.value for e in result.evidence}
    assert "dummy device" in values["interface sink0"]
    assert "peer loop1 is in this namespace" in values["interface loop0"]


def test_a_veth_enslaved_to_a_bridge_is_no_sink() -> None:
    a = InterfaceFact(3, "loop0", "veth", 1, True, False, "UP", (), peer_index=4, master=9)
    b = InterfaceFact(4, "loop1", "veth", 1, True, False, "UP", (), peer_index=3)
    bridge = InterfaceFact(9, "br0", "bridge", 1, True, False, "UP", ("10.1.0.1/24",))
    routes = (LOCAL, RouteFact("ipv4", "10.1.0.0/24", 254, "unicast", ("br0",)))
    result = engine_namespace_has_no_path_out(sealed(a, b, bridge, routes=routes))
    assert result.status == "fail" and "br0" in result.summary


def test_a_route_through_a_nexthop_object_is_a_path_out() -> None:
    routes = (LOCAL, RouteFact("ipv4", "default", 254, "unicast", (), nexthop_id=5))
    result = engine_namespace_has_no_path_out(sealed(routes=routes))
    assert result.status == "fail" and "nhid 5" in result.summary


def test_blackhole_and_unreachable_routes_lead_nowhere() -> None:
    routes = (
        LOCAL, RouteFact("ipv4", "default", 254, "blackhole", ()),
        RouteFact("ipv6", "default", 254, "unreachable", ("lo",)),
    )  # fmt: skip
    assert engine_namespace_has_no_path_out(sealed(routes=routes)).status == "pass"


def test_sharing_the_host_namespace_is_not_sealed_and_says_so() -> None:
    host = space((), (LO, ETH0), (DEFAULT, LOCAL), shares_audit_namespace=True, namespace=HOST_NS)
    shared = facts(namespaces=(host,))
    result = engine_namespace_has_no_path_out(shared)
    assert result.status == "not_applicable"
    assert "not sealed" in result.summary and "eth0" in result.summary
    assert any(e.label == "interface eth0" for e in result.evidence)
    strict = dataclasses.replace(shared, options=AuditOptions(require_sealed=True))
    assert engine_namespace_has_no_path_out(strict).status == "fail"


# ---------------------------------------------------------------- nft destination NAT

RULESET = {"nftables": [
    {"chain": {"family": "ip", "table": "nat", "name": "prerouting", "hook": "prerouting"}},
    {"chain": {"family": "ip", "table": "nat", "name": "DOCKER"}},
    {"rule": {"family": "ip", "table": "nat", "chain": "prerouting", "handle": 3, "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                   "right": "198.18.5.1"}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                   "right": {"set": [8080, {"range": [9000, 9100]}]}}},
        {"counter": {"packets": 0, "bytes": 0}},
        {"dnat": {"addr": "10.88.0.2", "port": 11434}}]}},
    {"rule": {"family": "ip", "table": "nat", "chain": "DOCKER", "handle": 5, "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                   "right": 11434}},
        {"dnat": {"addr": "10.88.0.3"}}]}},
    {"rule": {"family": "ip", "table": "nat", "chain": "DOCKER", "handle": 6, "expr": [
        {"xt": {"type": "target", "name": "DNAT"}}]}},
    {"rule": {"family": "inet", "table": "t", "chain": "c", "handle": 7, "expr": [
        {"dnat": {"addr": {"map": {"key": "tcp dport", "data": "@m"}}}}]}},
    {"rule": {"family": "ip", "table": "filter", "chain": "out", "handle": 8, "expr": [
        {"accept": None}]}},
]}  # fmt: skip


def test_parse_nat_reads_targets_ports_hooks_and_marks_what_it_cannot_show() -> None:
    rules = nft.parse_nat(json.dumps(RULESET))
    assert [r.handle for r in rules] == [3, 5, 6, 7]
    first, docker, xt, mapped = rules
    assert (first.hook, first.to_address, first.to_port, first.daddr) == (
        "prerouting", "10.88.0.2", 11434, "198.18.5.1",
    )  # fmt: skip
    assert first.dport_ranges == ((8080, 8080), (9000, 9100)) and not first.opaque
    assert "dnat to 10.88.0.2:11434" in first.text
    assert (docker.hook, docker.to_address, docker.to_port) == (None, "10.88.0.3", None)
    assert docker.dport_ranges == ((11434, 11434),)
    assert xt.opaque and xt.action == "xt DNAT" and xt.to_address is None
    assert mapped.opaque and mapped.to_address is None


@pytest.mark.parametrize(
    ("cmdline", "tied"),
    [
        (("socat", "TCP-LISTEN:11434,fork", f"TCP:{CONTAINER}:11434"), True),
        (("systemd-socket-proxyd", f"{CONTAINER}:11434"), True),
        (("socat", "TCP-LISTEN:11434,fork", "TCP:172.17.0.25:11434"), False),
        (("socat", "TCP-LISTEN:11434,fork", f"TCP:{CONTAINER}:8080"), False),
    ],
)
def test_a_forwarder_is_tied_by_the_address_and_port_its_command_line_names(
    cmdline: tuple[str, ...], tied: bool
) -> None:
    relay = proc(FORWARDER_PID, name=cmdline[0], cmdline=cmdline)
    base = container(bind="127.0.0.1", host=(sock("0.0.0.0", 9000, pid=FORWARDER_PID),))
    result = engine_listens_on_loopback(
        dataclasses.replace(base, processes=(*facts().processes, relay))
    )
    if tied:
        assert result.status == "fail" and "forwards to" in result.summary, result
    else:  # socat is a known forwarder: untied beyond loopback, it is no pass either
        assert result.status == "error" and "cannot be read" in result.summary, result


def test_a_listener_whose_child_joined_the_engine_namespace_publishes_it() -> None:
    parent = proc(FORWARDER_PID, name="rootlessport", cmdline=("rootlessport",))
    child = proc(FORWARDER_PID + 1, ppid=FORWARDER_PID, name="rootlessport-child")
    base = container(
        bind="127.0.0.1", host=(sock("0.0.0.0", 8080, pid=FORWARDER_PID),),
        owners={FORWARDER_PID: HOST_NS, FORWARDER_PID + 1: ENGINE_NS},
    )  # fmt: skip
    result = engine_listens_on_loopback(
        dataclasses.replace(base, processes=(*facts().processes, parent, child))
    )
    assert result.status == "fail", result
    assert f"its child pid {FORWARDER_PID + 1} runs in the engine's namespace" in result.summary

"""Interfaces, addresses and routes of the caller's network namespace, over rtnetlink.

Three NETLINK_ROUTE dump requests (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE over every
table) return what `ip link`, `ip addr` and `ip route show table all` print. Run in a
thread that has joined another namespace (`netns.read_namespace`), it reads that one.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
from collections.abc import Iterator

from auditor.inventory.interface import InterfaceFact, RouteFact
from auditor.inventory.sockdiag import NLM_F_DUMP, NLM_F_REQUEST, _messages

NETLINK_ROUTE = 0
RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE = 18, 22, 26
_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, proto, scope, type
_RTATTR = struct.Struct("=HH")
_RTNEXTHOP = struct.Struct("=HBBi")  # len, flags, hops, ifindex
_U32 = struct.Struct("=I")
_S32 = struct.Struct("=i")

IFF_UP, IFF_LOOPBACK = 0x1, 0x8
IFLA_ADDRESS, IFLA_IFNAME, IFLA_LINK, IFLA_MASTER = 1, 3, 5, 10
IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_LINK_NETNSID = 16, 18, 37
IFLA_INFO_KIND = 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_MULTIPATH, RTA_TABLE, RTA_NH_ID = 1, 4, 5, 9, 15, 30
NLA_TYPE_MASK = 0x3FFF  # strips NLA_F_NESTED / NLA_F_NET_BYTEORDER
OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
ROUTE_TYPES = {
    0: "unspec", 1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast",
    6: "blackhole", 7: "unreachable", 8: "prohibit", 9: "throw", 10: "nat", 11: "xresolve",
}  # fmt: skip
_FAMILIES = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6"}


def attributes(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of each rtattr/nlattr in `data`, flags stripped from the type."""
    offset = 0
    while offset + _RTATTR.size <= len(data):
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size:
            return
        yield kind & NLA_TYPE_MASK, data[offset + _RTATTR.size : offset + length]
        offset += (length + 3) & ~3


def _dump(sock: socket.socket, kind: int, body: bytes, seq: int) -> Iterator[bytes]:
    header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    sock.send(header + body)
    return _messages(sock, seq)


def _text(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode("utf-8", "replace")


def _address(family: int, value: bytes) -> str:
    return socket.inet_ntop(family, value)


def parse_link(payload: bytes) -> InterfaceFact:
    """One RTM_NEWLINK message (addresses and counters are filled in later)."""
    _family, link_type, index, flags, _change = _IFINFOMSG.unpack_from(payload)
    attrs = dict(attributes(payload[_IFINFOMSG.size :]))
    kind = None
    if IFLA_LINKINFO in attrs:
        info = dict(attributes(attrs[IFLA_LINKINFO]))
        kind = _text(info[IFLA_INFO_KIND]) if IFLA_INFO_KIND in info else None
    oper = attrs.get(IFLA_OPERSTATE, b"\0")[0]
    return InterfaceFact(
        index=index,
        name=_text(attrs.get(IFLA_IFNAME, b"")) or f"if{index}",
        kind=kind,
        link_type=link_type,
        up=bool(flags & IFF_UP),
        loopback=bool(flags & IFF_LOOPBACK),
        operstate=OPERSTATES[oper] if oper < len(OPERSTATES) else str(oper),
        addresses=(),
        peer_index=_U32.unpack(attrs[IFLA_LINK])[0] if IFLA_LINK in attrs else None,
        peer_netnsid=_S32.unpack(attrs[IFLA_LINK_NETNSID])[0]
        if IFLA_LINK_NETNSID in attrs
        else None,
        master=_U32.unpack(attrs[IFLA_MASTER])[0] if IFLA_MASTER in attrs else None,
    )


def parse_address(payload: bytes) -> tuple[int, str] | None:
    """(interface index, "ADDRESS/PREFIX") of one RTM_NEWADDR message."""
    family, prefix, _flags, _scope, index = _IFADDRMSG.unpack_from(payload)
    if family not in _FAMILIES:
        return None
    attrs = dict(attributes(payload[_IFADDRMSG.size :]))
    value = attrs.get(IFA_LOCAL, attrs.get(IFA_ADDRESS))
    if value is None:
        return None
    return index, f"{_address(family, value)}/{prefix}"


def _nexthops(data: bytes, family: int) -> Iterator[tuple[int, str | None]]:
    """(ifindex, gateway) of each nexthop of an RTA_MULTIPATH attribute."""
    offset = 0
    while offset + _RTNEXTHOP.size <= len(data):
        length, _flags, _hops, ifindex = _RTNEXTHOP.unpack_from(data, offset)
        if length < _RTNEXTHOP.size:
            return
        attrs = dict(attributes(data[offset + _RTNEXTHOP.size : offset + length]))
        gateway = attrs.get(RTA_GATEWAY)
        yield ifindex, _address(family, gateway) if gateway else None
        offset += (length + 3) & ~3


def parse_route(payload: bytes, names: dict[int, str]) -> RouteFact | None:
    """One RTM_NEWROUTE message; None for families other than IPv4/IPv6."""
    family, dst_len, _src, _tos, table, _proto, _scope, kind, _flags = _RTMSG.unpack_from(payload)
    if family not in _FAMILIES:
        return None
    attrs = dict(attributes(payload[_RTMSG.size :]))
    if RTA_TABLE in attrs:
        table = _U32.unpack(attrs[RTA_TABLE])[0]
    hops: list[tuple[int, str | None]] = []
    if RTA_OIF in attrs:
        hops.append((_U32.unpack(attrs[RTA_OIF])[0], None))
    if RTA_MULTIPATH in attrs:
        hops += list(_nexthops(attrs[RTA_MULTIPATH], family))
    gateway = attrs.get(RTA_GATEWAY)
    gateways = [_address(family, gateway)] if gateway else [g for _, g in hops if g]
    destination = "default"
    if RTA_DST in attrs:
        destination = f"{_address(family, attrs[RTA_DST])}/{dst_len}"
    return RouteFact(
        family=_FAMILIES[family],
        destination=destination,
        table=table,
        type=ROUTE_TYPES.get(kind, str(kind)),
        devices=tuple(names.get(index, f"if{index}") for index, _ in hops),
        gateway=gateways[0] if gateways else None,
        nexthop_id=_U32.unpack(attrs[RTA_NH_ID])[0] if RTA_NH_ID in attrs else None,
    )


def read() -> tuple[tuple[InterfaceFact, ...], tuple[RouteFact, ...]]:
    """Every interface (with its addresses) and every route of the caller's namespace."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC,
                       NETLINK_ROUTE) as sock:  # fmt: skip
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        links = [parse_link(p) for p in _dump(sock, RTM_GETLINK, _IFINFOMSG.pack(0, 0, 0, 0, 0), 1)]
        addresses: dict[int, list[str]] = {}
        for payload in _dump(sock, RTM_GETADDR, _IFADDRMSG.pack(0, 0, 0, 0, 0), 2):
            parsed = parse_address(payload)
            if parsed is not None:
                addresses.setdefault(parsed[0], []).append(parsed[1])
        names = {link.index: link.name for link in links}
        body = _RTMSG.pack(0, 0, 0, 0, 0, 0, 0, 0, 0)
        routes = [r for p in _dump(sock, RTM_GETROUTE, body, 3) if (r := parse_route(p, names))]
    interfaces = tuple(
        dataclasses.replace(link, addresses=tuple(addresses.get(link.index, ()))) for link in links
    )
    return interfaces, tuple(routes)

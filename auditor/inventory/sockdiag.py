"""Every TCP/UDP socket of this network namespace, read from the kernel over netlink sock_diag.

One NETLINK_SOCK_DIAG dump request per (family, protocol) returns `struct inet_diag_msg`
records: addresses, ports, state, the owning uid and the socket inode. This is what
`ss` reads; it is several times faster than parsing /proc/net/{tcp,udp}{,6} and it never
resolves owners (that is `sockets.owners`, done only where a control needs it).
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

from auditor.inventory.interface import SocketFact

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3

_NLMSGHDR = struct.Struct("=IHHII")
# inet_diag_req_v2: family, protocol, ext, pad, states, then inet_diag_sockid (48 bytes)
_REQUEST = struct.Struct("=BBBBI48s")
# inet_diag_msg: family, state, timer, retrans, sport(be16), dport(be16), src(16), dst(16),
# if, cookie(8), expires, rqueue, wqueue, uid, inode
_MSG = struct.Struct("=BBBB2s2s16s16sI8sIIIII")
_PORT = struct.Struct("!H")

_ALL_STATES = 0xFFFFFFFF
_LISTEN, _CLOSE = 10, 7
# connected or connecting sockets: not listeners, not unconnected (UDP reports CLOSE)
_PEER_STATES = _ALL_STATES & ~(1 << _LISTEN) & ~(1 << _CLOSE)
INET_DIAG_REQ_BYTECODE = 1
INET_DIAG_BC_JMP = 1
INET_DIAG_BC_D_COND = 8
_BC_OP = struct.Struct("=BBH")
_HOSTCOND = struct.Struct("=BBxxi")
_NLATTR = struct.Struct("=HH")
# the kernel's TCP state numbers (include/net/tcp_states.h), named as psutil and /proc name them
TCP_STATES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
    6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
    12: "SYN_RECV",
}  # fmt: skip
_FAMILIES = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6"}
_PROTOCOLS = {socket.IPPROTO_TCP: "tcp", socket.IPPROTO_UDP: "udp"}
_V4_ZERO = bytes(4)
_V6_ZERO = bytes(16)


class SockDiagError(OSError):
    """The kernel refused or broke off a sock_diag dump."""


def _not_to_loopback() -> bytes:
    """inet_diag bytecode accepting sockets whose destination is outside loopback.

    The kernel walks the ops: a true condition goes `yes` bytes on, a false one `no`
    bytes; landing exactly on the end accepts, landing 4 bytes past it rejects, and a
    JMP always takes `no`. A v4 condition also matches v4-mapped v6 addresses.
    """
    v4 = _HOSTCOND.pack(socket.AF_INET, 8, -1) + socket.inet_pton(socket.AF_INET, "127.0.0.0")
    v6 = _HOSTCOND.pack(socket.AF_INET6, 128, -1) + socket.inet_pton(socket.AF_INET6, "::1")
    size4, size6 = _BC_OP.size + len(v4), _BC_OP.size + len(v6)
    total = size4 + 4 + size6 + 4
    return b"".join((
        _BC_OP.pack(INET_DIAG_BC_D_COND, size4, size4 + 4) + v4,  # loopback v4: reject next
        _BC_OP.pack(INET_DIAG_BC_JMP, 4, total - size4 + 4),
        _BC_OP.pack(INET_DIAG_BC_D_COND, size6, size6 + 4) + v6,  # not ::1: accept (the end)
        _BC_OP.pack(INET_DIAG_BC_JMP, 4, 8),
    ))  # fmt: skip


def _request(family: int, protocol: int, seq: int, leaving_only: bool = False) -> bytes:
    states = _PEER_STATES if leaving_only else _ALL_STATES
    body = _REQUEST.pack(family, protocol, 0, 0, states, bytes(48))
    if leaving_only:
        code = _not_to_loopback()
        body += _NLATTR.pack(_NLATTR.size + len(code), INET_DIAG_REQ_BYTECODE) + code
    header = _NLMSGHDR.pack(
        _NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, 0
    )
    return header + body


def _messages(sock: socket.socket, seq: int) -> Iterator[bytes]:
    """The payload of every message of one dump, until NLMSG_DONE."""
    while True:
        data = sock.recv(1 << 20)
        if not data:
            raise SockDiagError("sock_diag: the kernel closed the dump")
        offset = 0
        while offset + _NLMSGHDR.size <= len(data):
            length, kind, _flags, msg_seq, _pid = _NLMSGHDR.unpack_from(data, offset)
            if length < _NLMSGHDR.size:
                raise SockDiagError("sock_diag: malformed netlink message")
            payload = data[offset + _NLMSGHDR.size : offset + length]
            offset += (length + 3) & ~3
            if msg_seq != seq:
                continue
            if kind == NLMSG_DONE:
                return
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from("=i", payload)[0]
                raise SockDiagError(code, f"sock_diag: {os.strerror(code)}")
            yield payload


def _fact(payload: bytes, protocol: str) -> SocketFact:
    family, state, _t, _r, sport, dport, src, dst, _if, _c, _e, _rq, _wq, uid, inode = (
        _MSG.unpack_from(payload)
    )
    if family == socket.AF_INET:
        local, remote = socket.inet_ntop(family, src[:4]), dst[:4]
        remote_zero = remote == _V4_ZERO
    else:
        local, remote = socket.inet_ntop(family, src), dst
        remote_zero = remote == _V6_ZERO
    remote_port = _PORT.unpack(dport)[0]
    unconnected = remote_zero and remote_port == 0
    return SocketFact(
        protocol=protocol,
        family=_FAMILIES.get(family, str(family)),
        local_address=local,
        local_port=_PORT.unpack(sport)[0],
        remote_address=None if unconnected else socket.inet_ntop(family, remote),
        remote_port=None if unconnected else remote_port,
        state="NONE" if protocol == "udp" else TCP_STATES.get(state, str(state)),
        pid=None,
        inode=inode,
        uid=uid,
    )


def open_socket() -> socket.socket:
    """A NETLINK_SOCK_DIAG socket of the caller's (thread's) network namespace."""
    sock = socket.socket(
        socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return sock


def dump(leaving_only: bool = False, sock: socket.socket | None = None) -> tuple[SocketFact, ...]:
    """Every TCP and UDP socket, IPv4 and IPv6, in the caller's network namespace.

    `leaving_only`: only sockets with a peer outside loopback, filtered by the kernel
    (so thousands of loopback sockets cost a sample nothing to parse).
    `sock`: a socket from `open_socket` to dump through (kept open by the caller); it
    reads the namespace it was opened in, whichever thread calls.
    """
    if sock is None:
        with open_socket() as own:
            return _dump(own, leaving_only)
    return _dump(sock, leaving_only)


def _dump(sock: socket.socket, leaving_only: bool) -> tuple[SocketFact, ...]:
    facts: list[SocketFact] = []
    seq = 0
    for protocol_number, protocol in _PROTOCOLS.items():
        for family in _FAMILIES:
            seq += 1
            sock.send(_request(family, protocol_number, seq, leaving_only))
            facts.extend(_fact(payload, protocol) for payload in _messages(sock, seq))
    return tuple(facts)

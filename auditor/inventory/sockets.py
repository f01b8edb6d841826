"""Every TCP/UDP socket over IPv4/IPv6 with its owning process.

psutil reads /proc/net/{tcp,tcp6,udp,udp6} and maps socket inodes to pids by
walking /proc/*/fd. Without root the fds of other users' processes cannot be
read, so those sockets come back with no pid: they are kept (owner unknown),
never dropped, and the privilege is recorded so the report says what was hidden.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import psutil

from auditor.inventory.interface import Privilege, SocketFact

_PROTOCOLS = {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp"}
_FAMILIES = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6"}


def privilege() -> Privilege:
    euid = os.geteuid()
    if euid == 0:
        return Privilege(euid=0, is_root=True, note="running as root: every process is visible")
    return Privilege(
        euid=euid,
        is_root=False,
        note=(
            "not root: sockets and executables of other users' processes have no readable "
            "owner, /proc/PID/environ of other users is unreadable; those facts are marked "
            "incomplete and the controls that need them report error"
        ),
    )


def to_fact(conn: Any) -> SocketFact:
    """psutil's connection tuple (sconn) → SocketFact."""
    local = conn.laddr
    remote = conn.raddr if conn.raddr else None
    return SocketFact(
        protocol=_PROTOCOLS.get(conn.type, str(conn.type)),
        family=_FAMILIES.get(conn.family, str(conn.family)),
        local_address=local.ip if local else "",
        local_port=local.port if local else 0,
        remote_address=remote.ip if remote else None,
        remote_port=remote.port if remote else None,
        state=conn.status,
        pid=conn.pid,
    )


def snapshot() -> tuple[SocketFact, ...]:
    """Every inet socket now.

    A socket shared by several processes (inherited across fork) is attributed to one
    of them, as psutil reports it; `ss -p` lists them all.
    """
    return tuple(to_fact(conn) for conn in psutil.net_connections(kind="inet"))


def unowned(sockets: tuple[SocketFact, ...]) -> tuple[SocketFact, ...]:
    return tuple(s for s in sockets if s.pid is None)


def socket_key(fact: SocketFact) -> tuple[object, ...]:
    return (
        fact.protocol, fact.local_address, fact.local_port,
        fact.remote_address, fact.remote_port, fact.state, fact.pid,
    )  # fmt: skip

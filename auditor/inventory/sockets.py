"""Every TCP/UDP socket over IPv4/IPv6, and the processes that own the ones that matter.

The table comes from the kernel over netlink sock_diag (`sockdiag.dump`): no owners.
An owner is the process holding an fd `socket:[INODE]`; finding it means reading
/proc/PID/fd, which is most of what `ss -p` costs. So owners are resolved only where a
control needs them: the engine's process tree (its fds are read, nothing else), and a
few sockets such as listeners on the engine's port (every process is walked until all
of them are found). `snapshot()` resolves every owner, as `ss -tuanp` does.

Without root the fds of other users' processes cannot be read, so those sockets come
back with no pid: they are kept (owner unknown), never dropped, and the privilege is
recorded so the report says what was hidden.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping

from auditor.inventory import sockdiag
from auditor.inventory.interface import Privilege, SocketFact

INIT_PID = 1


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


def table() -> tuple[SocketFact, ...]:
    """Every inet socket now, without owners (pid None), each with its inode and uid."""
    return sockdiag.dump()


def leaving_table() -> tuple[SocketFact, ...]:
    """The sockets connected or connecting to a peer outside loopback, without owners."""
    return sockdiag.dump(leaving_only=True)


def _all_pids() -> Iterator[int]:
    with os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit():
                yield int(entry.name)


def _socket_inodes(pid: int) -> Iterator[int]:
    """The inodes of the sockets process `pid` holds; nothing when its fds are unreadable."""
    try:
        fd_dir = os.open(f"/proc/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        for name in os.listdir(fd_dir):
            try:
                target = os.readlink(name, dir_fd=fd_dir)
            except OSError:
                continue
            if target.startswith("socket:["):
                yield int(target[8:-1])
    except OSError:
        return
    finally:
        os.close(fd_dir)


def owners(inodes: Collection[int], pids: Iterable[int] | None = None) -> dict[int, int]:
    """inode → pid of the first process (of `pids`, default every process) holding it.

    systemd (pid 1) holds every listener of a socket unit, and the service it activated holds
    the same socket: that service (the process that answers on it, e.g. systemd-socket-proxyd
    in a sealed engine's namespace) is named; systemd only when no other process holds it.
    Stops as soon as every inode asked for has an owner other than pid 1.
    """
    wanted = set(inodes)
    found: dict[int, int] = {}
    for pid in _all_pids() if pids is None else pids:
        if not wanted:
            break
        for inode in _socket_inodes(pid):
            if inode in wanted:
                found[inode] = pid
                if pid != INIT_PID:
                    wanted.discard(inode)
    return found


def attribute(socks: Iterable[SocketFact], found: Mapping[int, int]) -> tuple[SocketFact, ...]:
    """`socks` with the owners in `found` filled in; other sockets keep what they had."""
    return tuple(
        dataclasses.replace(s, pid=found[s.inode])
        if s.pid is None and s.inode is not None and s.inode in found
        else s
        for s in socks
    )


def resolve(
    socks: tuple[SocketFact, ...],
    needed: Callable[[SocketFact], bool],
    pids: Iterable[int] | None = None,
) -> tuple[SocketFact, ...]:
    """Resolve the owners of the unowned sockets that `needed` selects."""
    inodes = {s.inode for s in socks if s.pid is None and s.inode and needed(s)}
    if not inodes:
        return socks
    return attribute(socks, owners(inodes, pids))


def snapshot() -> tuple[SocketFact, ...]:
    """Every inet socket now with every readable owner (`ss -tuanp`).

    A socket shared by several processes (inherited across fork) is attributed to the
    first of them in /proc order; `ss -p` lists them all.
    """
    return resolve(table(), lambda _: True)


def unowned(sockets: tuple[SocketFact, ...]) -> tuple[SocketFact, ...]:
    return tuple(s for s in sockets if s.pid is None)


def normalized_ip(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address without its zone, an IPv4-mapped IPv6 address as IPv4; None if not an IP."""
    if address is None:
        return None
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def is_loopback(address: str | None) -> bool:
    """127.0.0.0/8, ::1 and IPv4-mapped loopback; "localhost" counts as loopback."""
    if address == "localhost":
        return True
    parsed = normalized_ip(address)
    return parsed is not None and parsed.is_loopback


def leaves_host(fact: SocketFact) -> bool:
    """A socket connected (or connecting) to a peer outside loopback."""
    return fact.remote_address is not None and not is_loopback(fact.remote_address)


def listening(fact: SocketFact) -> bool:
    """A listening TCP socket or an unconnected bound UDP socket."""
    if fact.protocol == "tcp":
        return fact.state == "LISTEN"
    return fact.remote_address is None


def watch_key(fact: SocketFact) -> tuple[object, ...]:
    """What makes a socket new to the watch: the socket itself, its peer and its state."""
    return (fact.protocol, fact.inode, fact.local_port, fact.remote_address, fact.remote_port,
            fact.state)  # fmt: skip

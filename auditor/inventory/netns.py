"""Read a process's network namespace from inside it: sockets, interfaces, addresses, routes.

The whole API:

    namespace_of(pid) -> str | None
        The namespace's identity, the /proc/PID/ns/net link ("net:[4026532291]");
        None when the process is gone or its namespace link is unreadable.

    read_namespace(pid, *, role="engine", owners=(), links=True) -> NamespaceFacts
        Enters /proc/PID/ns/net in a short-lived thread (setns(2) changes only the calling
        thread's namespace, never the audit's own) and reads there:
        - every TCP/UDP socket, IPv4 and IPv6, over netlink sock_diag (`sockdiag.dump`);
          owners are resolved only among `owners` (their /proc/PID/fd, which is the same
          from every namespace): pass the engine's process tree; other sockets keep pid None;
        - with `links`, every interface with its addresses (rtnetlink) and the rx/tx packet
          counters of /proc/PID/net/dev, and every route of every table.
        It never raises for a namespace it cannot read: `error` says why (the process is
        gone, /proc/PID/ns/net is unreadable without root, setns is refused without
        CAP_SYS_ADMIN, netlink failed) and `sockets`/`interfaces`/`routes` are None.
        A pid in the audit's own namespace is read directly (no setns, no privilege
        needed) and says so in `shares_audit_namespace`.

    diag_socket(pid) -> socket.socket
        A sock_diag netlink socket opened inside the namespace of `pid`; the caller owns
        (and closes) it. `sockdiag.dump(sock=it)` then reads that namespace's sockets from
        any thread, as often as needed (what --watch samples). Raises NamespaceError.

    in_namespace(pid, work) -> T
        `work()` run by a new thread that joined the namespace of `pid`: what it connects
        to on 127.0.0.1 is that namespace's loopback (how the audit asks a sealed engine).
        Raises NamespaceError when the namespace cannot be entered; whatever `work` raises
        is raised in the caller.

Each NamespaceError carries the reason as its message (`exc.args[-1]`), ready for a report.

Judging what was read (is the engine exposed, does the namespace lead out) is for the
checks; this module only reports what the kernel says.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import functools
import os
import socket
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

from auditor.inventory import rtnetlink, sockdiag, sockets
from auditor.inventory.interface import InterfaceFact, NamespaceFacts, RouteFact, SocketFact

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


class NamespaceError(OSError):
    """A namespace could not be entered or read; the message is the report's reason."""


def namespace_of(pid: int) -> str | None:
    """ "net:[INODE]" of the process's network namespace; None when unreadable."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def _open_namespace(pid: int) -> int:
    path = f"/proc/{pid}/ns/net"
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NamespaceError(errno.ESRCH, f"process {pid} is gone") from None
    except PermissionError as exc:
        raise NamespaceError(exc.errno, f"cannot open {path}: {exc.strerror}{_root()}") from None
    except OSError as exc:
        raise NamespaceError(exc.errno, f"cannot open {path}: {exc.strerror}") from None


def _root() -> str:
    return "" if os.geteuid() == 0 else " (needs root)"


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _setns(fd: int, pid: int) -> None:
    if _libc().setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        need = " (needs CAP_SYS_ADMIN)" if code == errno.EPERM else ""
        raise NamespaceError(code, f"setns into /proc/{pid}/ns/net: {os.strerror(code)}{need}")


def in_namespace(pid: int, work: Callable[[], T]) -> T:
    """`work()` run by a new thread that joined the network namespace of `pid`.

    Raises NamespaceError when the namespace cannot be entered; whatever `work` raises
    is raised here. Sockets `work` opens stay in that namespace after the thread ends.
    """
    fd = _open_namespace(pid)
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            _setns(fd, pid)
            outcome.append(work())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    try:
        thread = threading.Thread(target=run, name=f"netns-{pid}", daemon=True)
        thread.start()
        thread.join()
    finally:
        os.close(fd)
    if failure:
        raise failure[0]
    return outcome[0]


def diag_socket(pid: int) -> socket.socket:
    """A NETLINK_SOCK_DIAG socket in the network namespace of `pid` (see the module doc)."""
    return in_namespace(pid, sockdiag.open_socket)


def _counters(pid: int) -> dict[str, tuple[int, int]]:
    """/proc/PID/net/dev: interface name -> (rx packets, tx packets)."""
    path = f"/proc/{pid}/net/dev"
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            lines = handle.read().splitlines()[2:]
    except OSError as exc:
        raise NamespaceError(exc.errno, f"cannot read {path}: {exc.strerror}") from None
    counters = {}
    for line in lines:
        name, _, values = line.partition(":")
        fields = values.split()
        if len(fields) >= 10:
            counters[name.strip()] = (int(fields[1]), int(fields[9]))
    return counters


def _with_counters(pid: int, interfaces: tuple[InterfaceFact, ...]) -> tuple[InterfaceFact, ...]:
    counters = _counters(pid)
    names = {i.name for i in interfaces}
    if set(counters) != names:
        raise NamespaceError(
            errno.EIO,
            f"/proc/{pid}/net/dev lists {sorted(counters)} but rtnetlink {sorted(names)}",
        )
    return tuple(
        dataclasses.replace(i, rx_packets=counters[i.name][0], tx_packets=counters[i.name][1])
        for i in interfaces
    )


Reading = tuple[tuple[SocketFact, ...], tuple[InterfaceFact, ...], tuple[RouteFact, ...]]


def _reader(links: bool) -> Callable[[], Reading]:
    def read() -> Reading:
        table = sockdiag.dump()
        interfaces, routes = rtnetlink.read() if links else ((), ())
        return table, interfaces, routes

    return read


def read_namespace(
    pid: int, *, role: str = "engine", owners: Iterable[int] = (), links: bool = True
) -> NamespaceFacts:
    """The network namespace of `pid`, read from inside it (see the module's docstring)."""
    namespace = namespace_of(pid)
    shared = namespace is not None and namespace == namespace_of(os.getpid())
    try:
        if namespace is None:
            raise _open_error(pid)
        table, interfaces, routes = (
            _reader(links)() if shared else in_namespace(pid, _reader(links))
        )
        if links:
            interfaces = _with_counters(pid, interfaces)
        if namespace_of(pid) != namespace:
            raise NamespaceError(errno.EAGAIN, f"process {pid} changed namespace while read")
    except OSError as exc:
        return NamespaceFacts(
            namespace=namespace or f"/proc/{pid}/ns/net", pid=pid, role=role,
            shares_audit_namespace=shared, sockets=None, interfaces=None, routes=None,
            error=str(exc.args[-1]) if isinstance(exc, NamespaceError) else f"netlink: {exc}",
        )  # fmt: skip
    owned = sockets.resolve(table, lambda _: True, list(owners)) if owners else table
    return NamespaceFacts(
        namespace=namespace, pid=pid, role=role, shares_audit_namespace=shared,
        sockets=owned, interfaces=interfaces if links else None,
        routes=routes if links else None, error=None,
    )  # fmt: skip


def _open_error(pid: int) -> NamespaceError:
    """Why /proc/PID/ns/net has no readable link."""
    try:
        os.readlink(f"/proc/{pid}/ns/net")
    except FileNotFoundError:
        return NamespaceError(errno.ESRCH, f"process {pid} is gone")
    except OSError as exc:
        return NamespaceError(exc.errno, f"cannot read /proc/{pid}/ns/net: {exc.strerror}{_root()}")
    return NamespaceError(errno.EAGAIN, f"process {pid}: namespace changed while read")

"""What may tie a host-side listener on a sealed engine's port to the engine.

A gateway in front of a sealed engine listens on the engine's usual address in the host's
namespace. Whether it leads to the engine is read here, link by link: the nginx master that
holds the listener and the configuration it was started with (inventory/nginx_conf.py), the
systemd socket units listening on the unix sockets that configuration passes to
(`systemctl list-sockets`), every process listening on those paths (/proc/net/unix), and
the main process and network namespace of each service those units activate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from auditor.inventory import netns, nginx_conf, sockets, systemd
from auditor.inventory.interface import (
    EngineFacts,
    GatewayChainFacts,
    NginxMaster,
    ProcessFact,
    ServiceMain,
    SocketFact,
    SocketUnitListen,
    UnixListener,
)
from auditor.inventory.processes import by_pid

PROC_NET_UNIX = Path("/proc/net/unix")
LIST_SOCKETS = ("list-sockets", "--all", "--full", "--plain", "--no-legend", "--show-types")
SO_ACCEPTCON = 0x10000  # __SO_ACCEPTCON in /proc/net/unix's Flags: a listening socket


def parse_list_sockets(text: str) -> tuple[SocketUnitListen, ...]:
    """`systemctl list-sockets --all --full --plain --no-legend --show-types` lines."""
    found = []
    for line in text.splitlines():
        words = line.split(None, 3)
        if len(words) < 3:
            continue
        rest = words[3] if len(words) > 3 else ""
        activates = tuple(a.strip() for a in rest.split(",") if a.strip())
        found.append(SocketUnitListen(words[0], words[1], words[2], activates))
    return tuple(found)


def parse_proc_net_unix(text: str, paths: set[str]) -> list[tuple[str, int]]:
    """(path, inode) of every listening unix socket bound to one of `paths`."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split(None, 7)
        if len(fields) < 8 or fields[7] not in paths:
            continue
        try:
            flags, inode = int(fields[3], 16), int(fields[6])
        except ValueError:
            continue
        if flags & SO_ACCEPTCON:
            found.append((fields[7], inode))
    return found


def _unix_listeners(paths: set[str]) -> tuple[UnixListener, ...] | None:
    try:
        text = PROC_NET_UNIX.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    bound = parse_proc_net_unix(text, paths)
    owners = sockets.owners({inode for _, inode in bound})
    return tuple(UnixListener(path, inode, owners.get(inode)) for path, inode in bound)


def _is_nginx(process: ProcessFact) -> bool:
    return process.name == "nginx" or " ".join(process.cmdline).startswith("nginx:")


def _master_of(pid: int, table: Mapping[int, ProcessFact]) -> ProcessFact | None:
    """The nginx master of a listener's owner (itself or a worker's parent)."""
    process = table.get(pid)
    if process is None or not _is_nginx(process):
        return None
    if "master process" in " ".join(process.cmdline):
        return process
    parent = table.get(process.ppid)
    return parent if parent is not None and "master process" in " ".join(parent.cmdline) else None


def read_master(process: ProcessFact) -> NginxMaster:
    try:
        path, extra = nginx_conf.command_line(process.cmdline)
        servers = nginx_conf.servers(nginx_conf.load(path, extra))
    except nginx_conf.ConfigError as exc:
        return NginxMaster(process.pid, "?", (), str(exc))
    return NginxMaster(process.pid, path, servers)


def _service(unit: str) -> ServiceMain:
    shown = systemd.systemctl("show", unit, "-p", "MainPID", "--value")
    pid = int(shown.strip()) if shown is not None and shown.strip().isdigit() else 0
    if pid <= 0:
        return ServiceMain(unit, None, None)
    return ServiceMain(unit, pid, netns.namespace_of(pid))


def _unix_targets(masters: Iterable[NginxMaster]) -> set[str]:
    return {
        t.removeprefix("unix:") for m in masters for s in m.servers for t in s.targets
        if t.startswith("unix:")
    }  # fmt: skip


def collect(
    socks: tuple[SocketFact, ...], processes: tuple[ProcessFact, ...], engine: EngineFacts
) -> GatewayChainFacts | None:
    """The chain's links for the host-side listeners on the engine's port; None when no
    process but the engine's listens there."""
    tree = {p.pid for p in engine.tree}
    owners = {
        s.pid for s in socks
        if s.protocol == "tcp" and sockets.listening(s) and s.local_port == engine.port
        and s.pid is not None and s.pid not in tree
    }  # fmt: skip
    if engine.port is None or not owners:
        return None
    table = by_pid(processes)
    found = {m.pid: m for m in (_master_of(pid, table) for pid in sorted(owners)) if m}
    masters = tuple(read_master(m) for m in found.values())
    paths = _unix_targets(masters)
    listed = systemd.systemctl(*LIST_SOCKETS)
    units = None if listed is None else tuple(
        u for u in parse_list_sockets(listed) if u.listen in paths
    )  # fmt: skip
    services = sorted({a for u in units or () for a in u.activates})
    return GatewayChainFacts(
        masters=masters,
        socket_units=units,
        unix_listeners=_unix_listeners(paths),
        services=tuple(_service(unit) for unit in services),
        error=None if listed is not None else "systemctl list-sockets could not be run",
    )

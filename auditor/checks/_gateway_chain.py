"""Whether a host-side listener on a sealed engine's port is the engine's gateway.

It is, only when every link is shown by the collected facts:
1. its owner is an nginx master (or a worker of one) whose configuration was read, and every
   server of it that serves this listener passes only to one unix socket PATH (no other
   target, no fastcgi/grpc/… pass);
2. systemd socket units listen on PATH (stream), and every process listening on PATH is
   systemd or a service those units activate;
3. each such service's main process is systemd-socket-proxyd, runs in the engine's network
   namespace and forwards to the engine's own loopback listener on its port.
Anything else on the engine's port stays "another process" (OG-NET-02 fails it).
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.checks._common import EngineView, tree_pids
from auditor.inventory.interface import (
    Facts,
    GatewayChainFacts,
    NginxMaster,
    NginxServer,
    ProcessFact,
    SocketFact,
)
from auditor.inventory.processes import by_pid
from auditor.inventory.sockets import is_loopback, listening, normalized_ip

PROXYD = "systemd-socket-proxyd"
INIT_PID = 1


@dataclass(frozen=True)
class Chain:
    proved: bool
    text: str  # the proved chain, or the first link that is not shown


def _broken(why: str) -> Chain:
    return Chain(False, why)


def _host_port(text: str) -> tuple[str, int | None]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port) if port.isdigit() else None


def serves(server: NginxServer, sock: SocketFact) -> bool:
    """Whether a request on `sock` may be handled by `server` (nginx binds a wildcard and
    picks the server by address, so a wildcard socket is served by every server on its port)."""
    bound = normalized_ip(sock.local_address)
    wildcard_sock = bound is not None and bound.is_unspecified
    for listen in server.listens:
        if listen.startswith("unix:"):
            continue
        host, port = _host_port(listen)
        if port != sock.local_port:
            continue
        if host in ("*", "") or wildcard_sock:
            return True
        if host == "localhost" and is_loopback(sock.local_address):
            return True
        if normalized_ip(host) is not None and normalized_ip(host) == bound:
            return True
    return False


def _master_for(sock: SocketFact, chain: GatewayChainFacts, facts: Facts) -> NginxMaster | None:
    table = by_pid(facts.processes)
    owner = table.get(sock.pid or -1)
    candidates = {sock.pid, owner.ppid if owner else None}
    return next((m for m in chain.masters if m.pid in candidates), None)


def _upstream_path(master: NginxMaster, sock: SocketFact) -> Chain:
    if master.error is not None:
        return _broken(f"nginx pid {master.pid}: its configuration is unknown ({master.error})")
    serving = [s for s in master.servers if serves(s, sock)]
    if not serving:
        return _broken(f"nginx pid {master.pid}: no server of {master.config} listens there")
    targets = {t for s in serving for t in s.targets}
    others = sorted({p for s in serving for p in s.other_passes})
    if others or len(targets) != 1 or not next(iter(targets)).startswith("unix:"):
        shown = ", ".join(sorted(targets) + others) or "nothing"
        return _broken(f"nginx pid {master.pid} ({master.config}) passes it to {shown}, "
                       "not to one unix socket")  # fmt: skip
    return Chain(True, next(iter(targets)).removeprefix("unix:"))


def _proxy_target(process: ProcessFact) -> str | None:
    """The one address systemd-socket-proxyd forwards to; None for anything else."""
    if not process.cmdline or process.cmdline[0].rsplit("/", 1)[-1] != PROXYD:
        return None
    words = [w for w in process.cmdline[1:] if not w.startswith("-")]
    return words[0] if len(words) == 1 else None


def _engine_loopback(view: EngineView, target: str) -> bool:
    host, port = _host_port(target)
    if port is None or port != view.engine.port:
        return False
    host = "127.0.0.1" if host == "localhost" else host
    if not is_loopback(host):
        return False
    tree = tree_pids(view.engine)
    for sock in view.sockets:
        if sock.pid in tree and listening(sock) and sock.local_port == port:
            bound = normalized_ip(sock.local_address)
            if bound is not None and (bound.is_unspecified or bound == normalized_ip(host)):
                return True
    return False


def _socket_units(path: str, chain: GatewayChainFacts) -> Chain | tuple[str, ...]:
    if chain.socket_units is None or chain.unix_listeners is None:
        return _broken(chain.error or "the socket units or /proc/net/unix could not be read")
    units = [u for u in chain.socket_units if u.listen == path]
    if not units or any(u.kind != "Stream" for u in units):
        return _broken(f"no systemd stream socket unit listens on {path}")
    services = tuple(sorted({a for u in units for a in u.activates}))
    if not services:
        return _broken(f"{', '.join(u.unit for u in units)} on {path} activates no service")
    return services


def _proxies(path: str, services: tuple[str, ...], chain: GatewayChainFacts, facts: Facts,
             view: EngineView) -> Chain:  # fmt: skip
    table = by_pid(facts.processes)
    mains = {s.unit: s for s in chain.services}
    pids: set[int] = {INIT_PID}
    for unit in services:
        main = mains.get(unit)
        if main is None or main.pid is None:
            return _broken(f"{unit} (activated on {path}) has no main process")
        process = table.get(main.pid)
        target = _proxy_target(process) if process else None
        if target is None:
            return _broken(f"{unit} pid {main.pid} is not {PROXY_TEXT}")
        if view.space is None or main.namespace != view.space.namespace:
            where = main.namespace or "an unreadable namespace"
            return _broken(f"{unit} pid {main.pid} runs in {where}, not the engine's")
        if not _engine_loopback(view, target):
            return _broken(f"{unit} pid {main.pid} forwards to {target}, not to the engine")
        pids.add(main.pid)
    bound = [u for u in chain.unix_listeners or () if u.path == path]
    strangers = [u for u in bound if u.owner not in pids]
    if not bound or strangers:
        who = ", ".join(f"inode {u.inode} of pid {u.owner}" for u in strangers) or "nothing"
        return _broken(f"{path} is listened on by {who} besides systemd and {', '.join(services)}")
    return Chain(True, ", ".join(f"{u} pid {mains[u].pid}" for u in services))


PROXY_TEXT = f"{PROXYD} with one target"


def relate(sock: SocketFact, facts: Facts, view: EngineView) -> Chain:
    """Whether host-side listener `sock` is proved to be the sealed engine's gateway."""
    chain = facts.gateway_chain
    if chain is None or view.space is None:
        return _broken("no gateway facts were collected")
    master = _master_for(sock, chain, facts)
    if master is None:
        return _broken(f"pid {sock.pid} is not an nginx master or worker")
    upstream = _upstream_path(master, sock)
    if not upstream.proved:
        return upstream
    path = upstream.text
    services = _socket_units(path, chain)
    if isinstance(services, Chain):
        return services
    proxies = _proxies(path, services, chain, facts, view)
    if not proxies.proved:
        return proxies
    return Chain(True, (
        f"nginx pid {master.pid} ({master.config}) passes it only to unix:{path}, held by "
        f"systemd for {proxies.text} ({PROXYD} in the engine's namespace "
        f"{view.space.namespace}) which forwards to the engine's loopback port {view.engine.port}"
    ))  # fmt: skip

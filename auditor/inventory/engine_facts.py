"""What the located engine is: its tree, environment, bind address, port, version, unit."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
from collections.abc import Sequence

import psutil

from auditor.inventory import systemd
from auditor.inventory.discovery import Located
from auditor.inventory.environ import read_environ
from auditor.inventory.interface import EngineFacts, ProcessFact, SocketFact, UnitFacts
from auditor.inventory.processes import descendants
from auditor.inventory.profiles import PROFILES


def tree_listeners(sockets: Sequence[SocketFact], pids: set[int]) -> list[SocketFact]:
    return [
        s
        for s in sockets
        if s.pid in pids and s.protocol == "tcp" and s.state == psutil.CONN_LISTEN
    ]


def _loopback_host(listeners: Sequence[SocketFact]) -> str:
    """A loopback address on which the engine answers: never a non-loopback one."""
    for sock in listeners:
        with contextlib.suppress(ValueError):
            addr = ipaddress.ip_address(sock.local_address)
            if addr.is_loopback:
                return f"[{addr}]" if addr.version == 6 else str(addr)
            if addr.is_unspecified:
                return "[::1]" if addr.version == 6 else "127.0.0.1"
    return "127.0.0.1"


def _net_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def _exec_start_path(unit: UnitFacts | None) -> str | None:
    """The binary ExecStart= names, when the engine is not running to ask."""
    if unit is None:
        return None
    exec_start = unit.properties.get("ExecStart", "")
    match = re.search(r"path=(\S+)", exec_start)
    if match:
        return match.group(1)
    words = systemd.split_words(exec_start)
    return words[0].lstrip("-@:+!") if words else None


def engine_facts(
    located: Located, processes: Sequence[ProcessFact], sockets: Sequence[SocketFact]
) -> EngineFacts:
    profile = PROFILES[located.kind]
    main = located.main
    tree = descendants(main, processes) if main else ()
    environ = read_environ(main.pid) if main else None
    config_env = dict(located.unit.environment) if located.unit else {}
    host, config_port = profile.configured_bind(
        main, environ if environ is not None else config_env
    )
    listeners = tree_listeners(sockets, {p.pid for p in tree})
    ports = [s.local_port for s in listeners]
    port = config_port if config_port in ports or not ports else ports[0]
    version = None
    if main is not None:
        version = profile.version(main, _loopback_host(listeners), port if ports else None)
    server_path, server_config, server_error = (
        profile.server_config(main, environ) if profile.server_config else (None, None, None)
    )
    own_ns = _net_namespace(os.getpid())
    engine_ns = _net_namespace(main.pid) if main else None
    return EngineFacts(
        kind=located.kind,
        discovered_by=located.discovered_by,
        main=main,
        tree=tree,
        exe_path=main.exe if main else _exec_start_path(located.unit),
        version=version,
        environ=environ,
        unit=located.unit,
        port=port,
        listen_host=host,
        other_candidates=located.others,
        foreign_netns=bool(own_ns and engine_ns and own_ns != engine_ns),
        server_config_path=server_path,
        server_config=server_config,
        server_config_error=server_error,
    )

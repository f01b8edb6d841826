"""Find the engine: by systemd unit, by process, by port, or by the pid the user gave.

Facts only: which process is the engine, its tree, version, unit and configured
bind address. Whether any of that is acceptable is for the checks to say.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from auditor import safeio
from auditor.errors import InputError
from auditor.inventory import systemd
from auditor.inventory.environ import read_environ
from auditor.inventory.interface import (
    AuditOptions,
    EngineFacts,
    ProcessFact,
    SocketFact,
    UnitFacts,
)
from auditor.inventory.processes import by_pid, descendants, read_process

KINDS: tuple[str, ...] = ("ollama", "llamacpp")
UNITS: Mapping[str, tuple[str, ...]] = {
    "ollama": ("ollama.service",),
    "llamacpp": ("offgrid-llamacpp.service", "llamacpp.service"),
}
# Ports the engines use when nothing else is configured (llama-server, llama_cpp.server).
DEFAULT_PORTS: Mapping[str, tuple[int, ...]] = {"ollama": (11434,), "llamacpp": (8080, 8000)}
OLLAMA_DEFAULT_HOST = "127.0.0.1"
OLLAMA_SERVICE_HOME = "/usr/share/ollama"  # home of the `ollama` user the installer creates
OLLAMA_DEFAULT_PORT = 11434
VERSION_TIMEOUT_S = 5.0


def _basename(path: str | None) -> str:
    return os.path.basename(path) if path else ""


def classify(fact: ProcessFact) -> str | None:
    """Which engine a process is, from its name, executable and command line."""
    argv = fact.cmdline
    names = {fact.name, _basename(fact.exe), _basename(argv[0] if argv else None)}
    if "ollama" in names and "serve" in argv[1:]:
        return "ollama"
    if "llama-server" in names:
        return "llamacpp"
    for index, arg in enumerate(argv[:-1]):
        if arg == "-m" and argv[index + 1] in ("llama_cpp.server", "llama_cpp.server.__main__"):
            return "llamacpp"
    return None


def _is_ancestor_candidate(
    fact: ProcessFact, candidates: set[int], table: Mapping[int, ProcessFact]
) -> bool:
    seen: set[int] = set()
    parent = table.get(fact.ppid)
    while parent is not None and parent.pid not in seen:
        if parent.pid in candidates:
            return True
        seen.add(parent.pid)
        parent = table.get(parent.ppid)
    return False


def find_by_process(
    processes: Sequence[ProcessFact], kinds: Sequence[str]
) -> tuple[ProcessFact, str, tuple[int, ...]] | None:
    """The oldest engine-looking process that is not itself a child of another one."""
    matches = [(p, kind) for p in processes if (kind := classify(p)) is not None and kind in kinds]
    pids = {p.pid for p, _ in matches}
    table = by_pid(processes)
    roots = [(p, k) for p, k in matches if not _is_ancestor_candidate(p, pids, table)]
    if not roots:
        return None
    roots.sort(key=lambda item: (item[0].create_time, item[0].pid))
    main, kind = roots[0]
    return main, kind, tuple(p.pid for p, _ in roots[1:])


def find_by_port(
    sockets: Sequence[SocketFact], processes: Sequence[ProcessFact], kinds: Sequence[str]
) -> tuple[ProcessFact, str] | None:
    table = by_pid(processes)
    for kind in kinds:
        for port in DEFAULT_PORTS[kind]:
            for sock in sockets:
                listening = sock.protocol == "tcp" and sock.state == psutil.CONN_LISTEN
                if listening and sock.local_port == port and sock.pid is not None:
                    owner = table.get(sock.pid)
                    if owner is not None:
                        return owner, kind
    return None


# ------------------------------------------------------------------ configuration


def _option(argv: Sequence[str], *names: str) -> str | None:
    """The value of --name VALUE or --name=VALUE in a command line (last one wins)."""
    value = None
    for index, arg in enumerate(argv):
        for name in names:
            if arg == name and index + 1 < len(argv):
                value = argv[index + 1]
            elif arg.startswith(name + "="):
                value = arg[len(name) + 1 :]
    return value


def parse_ollama_host(value: str | None) -> tuple[str, int]:
    """OLLAMA_HOST as Ollama reads it: [scheme://]host[:port], defaults 127.0.0.1:11434."""
    if not value:
        return OLLAMA_DEFAULT_HOST, OLLAMA_DEFAULT_PORT
    rest = value.split("://", 1)[-1].split("/", 1)[0]
    host, port = rest, OLLAMA_DEFAULT_PORT
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        if tail.startswith(":") and tail[1:].isdigit():
            port = int(tail[1:])
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
        port = int(port_text) if port_text.isdigit() else OLLAMA_DEFAULT_PORT
    # an empty host (":11434") makes Ollama listen on every address
    return (host if host else "0.0.0.0"), port  # noqa: S104 - a fact, not a bind


def configured_bind(
    kind: str, main: ProcessFact | None, env: Mapping[str, str]
) -> tuple[str | None, int | None]:
    """The bind address and port the engine's configuration asks for."""
    if kind == "ollama":
        return parse_ollama_host(env.get("OLLAMA_HOST"))
    argv = main.cmdline if main else ()
    is_cpp_server = main is not None and "llama-server" in {main.name, _basename(main.exe)}
    host = _option(argv, "--host") or ("127.0.0.1" if is_cpp_server else "localhost")
    port_text = _option(argv, "--port")
    default_port = 8080 if is_cpp_server else 8000
    return host, int(port_text) if port_text and port_text.isdigit() else default_port


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


# ------------------------------------------------------------------ version


def _run_version(cmd: Sequence[str]) -> str | None:
    try:
        done = subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=VERSION_TIMEOUT_S, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout + "\n" + done.stderr).strip() if done.returncode == 0 else None


def ollama_version(exe: str | None, host: str, port: int | None) -> str | None:
    if port is not None:
        with contextlib.suppress(requests.RequestException, ValueError):
            reply = requests.get(f"http://{host}:{port}/api/version", timeout=VERSION_TIMEOUT_S)
            if reply.ok:
                return str(reply.json()["version"])
    if exe:
        output = _run_version([exe, "--version"]) or ""
        match = re.search(r"version is (\S+)", output)
        if match:
            return match.group(1)
    return None


def _argv0_path(pid: int, argv0: str) -> str | None:
    """argv[0] as a path that exists, resolving a relative one against the process's cwd."""
    if "/" not in argv0:
        return None
    if not os.path.isabs(argv0):
        try:
            argv0 = os.path.join(psutil.Process(pid).cwd(), argv0)
        except psutil.Error:
            return None
    return argv0 if os.path.exists(argv0) else None


_PY_VERSION = "import importlib.metadata as m; print(m.version('llama_cpp_python'))"


def llamacpp_version(main: ProcessFact) -> str | None:
    """llama-cpp-python's version from the server's own interpreter, or llama-server's build."""
    argv0 = main.cmdline[0] if main.cmdline else ""
    if "llama-server" in {main.name, _basename(main.exe), _basename(argv0)}:
        build = re.search(r"version:\s*(\d+)", _run_version([main.exe or argv0, "--version"]) or "")
        return f"b{build.group(1)}" if build else None
    # argv[0] keeps the virtualenv's path; /proc/PID/exe resolves to the base interpreter
    interpreter = _argv0_path(main.pid, argv0) or main.exe or ""
    if not interpreter:
        return None
    output = _run_version([interpreter, "-I", "-c", _PY_VERSION])
    return output.splitlines()[-1].strip() if output else None


# ------------------------------------------------------------------ assembly


@dataclass(frozen=True)
class Located:
    kind: str
    discovered_by: str
    main: ProcessFact | None
    unit: UnitFacts | None
    others: tuple[int, ...] = ()


def _from_pid(options: AuditOptions, kinds: Sequence[str]) -> Located:
    pid = options.engine_pid
    assert pid is not None
    try:
        main = read_process(pid)
    except psutil.NoSuchProcess:
        raise InputError(f"--engine-pid {pid}: no such process") from None
    except psutil.AccessDenied:
        raise InputError(f"--engine-pid {pid}: process cannot be read (run as root)") from None
    kind = options.engine or classify(main)
    if kind is None:
        raise InputError(
            f"--engine-pid {pid} ({main.name}) looks like neither ollama nor llamacpp; "
            "say which with --engine"
        )
    return Located(kind, "pid", main, None)


def _from_units(kinds: Sequence[str], table: Mapping[int, ProcessFact]) -> Located | None:
    for kind in kinds:
        for name in UNITS[kind]:
            unit = systemd.read_unit(name, use_systemctl=True)
            if unit is None:
                continue
            main_pid = int(unit.properties.get("MainPID", "0") or 0)
            main = table.get(main_pid)
            if main is None and main_pid:
                with contextlib.suppress(psutil.Error):
                    main = read_process(main_pid)
            return Located(kind, "unit", main, unit)
    return None


def _unit_for(kind: str, use_systemctl: bool) -> UnitFacts | None:
    for name in UNITS[kind]:
        unit = systemd.read_unit(name, use_systemctl=use_systemctl)
        if unit is not None:
            return unit
    return None


def locate(
    options: AuditOptions,
    processes: Sequence[ProcessFact],
    sockets: Sequence[SocketFact],
    systemd_running: bool,
) -> Located | None:
    kinds = (options.engine,) if options.engine else KINDS
    if options.engine_pid is not None:
        found = _from_pid(options, kinds)
    elif systemd_running and (by_unit := _from_units(kinds, by_pid(processes))) is not None:
        return by_unit
    elif (by_process := find_by_process(processes, kinds)) is not None:
        main, kind, others = by_process
        found = Located(kind, "process", main, None, others)
    elif (by_port := find_by_port(sockets, processes, kinds)) is not None:
        found = Located(by_port[1], "port", by_port[0], None)
    else:
        # not running: a unit on disk still says which engine this workstation serves
        for kind in kinds:
            unit = _unit_for(kind, systemd_running)
            if unit is not None:
                return Located(kind, "unit", None, unit)
        return None
    return Located(
        found.kind, found.discovered_by, found.main,
        _unit_for(found.kind, systemd_running), found.others,
    )  # fmt: skip


def _net_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def engine_facts(
    located: Located, processes: Sequence[ProcessFact], sockets: Sequence[SocketFact]
) -> EngineFacts:
    main = located.main
    tree = descendants(main, processes) if main else ()
    environ = read_environ(main.pid) if main else None
    config_env = dict(located.unit.environment) if located.unit else {}
    effective_env = environ if environ is not None else config_env
    host, config_port = configured_bind(located.kind, main, effective_env)
    listeners = tree_listeners(sockets, {p.pid for p in tree})
    ports = [s.local_port for s in listeners]
    port = config_port if config_port in ports or not ports else ports[0]
    version = None
    if main is not None:
        if located.kind == "ollama":
            version = ollama_version(main.exe, _loopback_host(listeners), port if ports else None)
        else:
            version = llamacpp_version(main)
    server_path, server_config, server_error = (
        _ollama_server_config(main, environ) if located.kind == "ollama" else (None, None, None)
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


def _ollama_server_config(
    main: ProcessFact | None, environ: Mapping[str, str] | None
) -> tuple[str | None, dict[str, object] | None, str | None]:
    """~/.ollama/server.json of the user the server runs as (HOME from its environment)."""
    home = (environ or {}).get("HOME")
    if home is None and main is not None and main.uid is not None:
        with contextlib.suppress(KeyError):
            home = pwd.getpwuid(main.uid).pw_dir
    if home is None:
        return None, None, "the service user's home directory is unknown"
    path = Path(home) / ".ollama" / "server.json"
    try:  # a file the service user controls: no symlink followed, theirs, bounded
        uid = main.uid if main is not None else None
        data = safeio.parse_json(
            safeio.read_user_text(Path(home), ".ollama/server.json", uid), str(path)
        )
    except FileNotFoundError:
        return str(path), None, None
    except InputError as exc:
        return str(path), None, f"unreadable: {exc}"
    if not isinstance(data, dict):
        return str(path), None, "malformed: top level is not an object"
    return str(path), data, None


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


def model_paths(engine: EngineFacts) -> list[Path]:
    """Where the engine's models live, as its configuration says."""
    env = dict(engine.unit.environment) if engine.unit else {}
    env.update(engine.environ or {})
    if engine.kind == "ollama":
        if env.get("OLLAMA_MODELS"):
            return [Path(env["OLLAMA_MODELS"])]
        # Ollama's default is ~/.ollama/models of the user it runs as
        return [Path(env.get("HOME") or OLLAMA_SERVICE_HOME) / ".ollama" / "models"]
    argv = engine.main.cmdline if engine.main else ()
    model = _option(argv, "--model", "-m") if argv else None
    if model is None and engine.unit is not None:
        model = _option(systemd.split_words(engine.unit.properties.get("ExecStart", "")), "--model")
    return [Path(model)] if model else []

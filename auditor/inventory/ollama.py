"""Ollama as offgrid finds and reads it: `ollama serve`, OLLAMA_HOST, its API, server.json."""

from __future__ import annotations

import contextlib
import pwd
import re
from collections.abc import Mapping
from pathlib import Path

import requests

from auditor import safeio
from auditor.errors import InputError
from auditor.inventory.cmdline import VERSION_TIMEOUT_S, names_of, run_version
from auditor.inventory.interface import EngineFacts, ProcessFact

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11434
SERVICE_HOME = "/usr/share/ollama"  # home of the `ollama` user the installer creates

ServerConfig = tuple[str | None, Mapping[str, object] | None, str | None]


def is_server(fact: ProcessFact) -> bool:
    """`ollama serve`; `ollama runner` processes are its children, not servers."""
    return "ollama" in names_of(fact) and "serve" in fact.cmdline[1:]


def parse_ollama_host(value: str | None) -> tuple[str, int]:
    """OLLAMA_HOST as Ollama reads it: [scheme://]host[:port], defaults 127.0.0.1:11434."""
    if not value:
        return DEFAULT_HOST, DEFAULT_PORT
    rest = value.split("://", 1)[-1].split("/", 1)[0]
    host, port = rest, DEFAULT_PORT
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        if tail.startswith(":") and tail[1:].isdigit():
            port = int(tail[1:])
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
        port = int(port_text) if port_text.isdigit() else DEFAULT_PORT
    # an empty host (":11434") makes Ollama listen on every address
    return (host if host else "0.0.0.0"), port  # noqa: S104 - a fact, not a bind


def configured_bind(_main: ProcessFact | None, env: Mapping[str, str]) -> tuple[str, int]:
    return parse_ollama_host(env.get("OLLAMA_HOST"))


def version(main: ProcessFact, host: str, port: int | None) -> str | None:
    """From the API (`/api/version`) when it listens, else from `ollama --version`."""
    if port is not None:
        with contextlib.suppress(requests.RequestException, ValueError):
            reply = requests.get(f"http://{host}:{port}/api/version", timeout=VERSION_TIMEOUT_S)
            if reply.ok:
                return str(reply.json()["version"])
    if main.exe:
        output = run_version([main.exe, "--version"]) or ""
        match = re.search(r"version is (\S+)", output)
        if match:
            return match.group(1)
    return None


def server_config(main: ProcessFact | None, environ: Mapping[str, str] | None) -> ServerConfig:
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


def model_paths(engine: EngineFacts, env: Mapping[str, str]) -> list[Path]:
    """OLLAMA_MODELS, else ~/.ollama/models of the user it runs as."""
    if env.get("OLLAMA_MODELS"):
        return [Path(env["OLLAMA_MODELS"])]
    return [Path(env.get("HOME") or SERVICE_HOME) / ".ollama" / "models"]


def configures_engine(settings: tuple[str, ...]) -> bool:
    """Whether a drop-in's settings configure Ollama itself (an OLLAMA_ variable)."""
    return any(key.startswith("Environment:OLLAMA_") for key in settings)


def product(_version: str) -> str:
    return "ollama"

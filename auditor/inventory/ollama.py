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
from auditor.inventory.cmdline import VERSION_TIMEOUT_S, names_of, option, program, run_version
from auditor.inventory.interface import (
    EngineFacts,
    ProcessFact,
    RunnerFact,
    ServedModel,
    ServedModels,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11434
SERVICE_HOME = "/usr/share/ollama"  # home of the `ollama` user the installer creates

ServerConfig = tuple[str | None, Mapping[str, object] | None, str | None]


# `slog.Info(fmt.Sprintf("Ollama cloud disabled: %t", …))` in server/routes.go, at start
CLOUD_LOG_PATTERN = r"Ollama cloud disabled: (true|false)"
# cmd/agent_tui.go registers Bash unless the first, WebSearch/WebFetch unless the second is
# set to any non-empty value
AGENT_SWITCHES = ("OLLAMA_AGENT_DISABLE_SHELL", "OLLAMA_AGENT_DISABLE_WEBSEARCH")


def is_cli(fact: ProcessFact) -> bool:
    """An `ollama` command other than the server and its runners (run, launch, the agent)."""
    name, args = program(fact)
    return name == "ollama" and args[:1] not in (("serve",), ("runner",))


def is_server(fact: ProcessFact) -> bool:
    """`ollama serve`; `ollama runner` processes are its children, not servers."""
    return "ollama" in names_of(fact) and "serve" in fact.cmdline[1:]


def runner(fact: ProcessFact) -> RunnerFact | None:
    """An inference runner of Ollama: since v0.30.0 an upstream `llama-server` started from
    lib/ollama/ with `--host 127.0.0.1 --port <ephemeral> --offline --no-webui`; before, an
    `ollama runner --port N` child that binds 127.0.0.1 itself."""
    name, args = program(fact)
    if name == "llama-server":
        kind, offline = "llama-server", "--offline" in args
    elif name == "ollama" and args[:1] == ("runner",):
        kind, offline = "ollama runner", None
    else:
        return None
    return RunnerFact(
        fact.pid, kind, option(args, "--host"), _int(option(args, "--port")), offline,
        model=option(args, "--model"), ctx=_int(option(args, "-c", "--ctx-size")),
        slots=_int(option(args, "-np", "--parallel")),
        gpu_layers=_int(option(args, "-ngl", "--n-gpu-layers", "--gpu-layers")),
    )  # fmt: skip


def _int(text: str | None) -> int | None:
    return int(text) if text and text.lstrip("-").isdigit() else None


def _params_text(text: str) -> dict[str, str]:
    """/api/show "parameters": one `name value` line per parameter (last one wins)."""
    out = {}
    for line in text.splitlines():
        name, _, value = line.strip().partition(" ")
        if name:
            out[name] = value.strip().strip('"')
    return out


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def served(engine: EngineFacts, base: str, runners: tuple[RunnerFact, ...]) -> ServedModels:
    """Loaded models from /api/ps, their stored parameters from /api/show, and what the
    runner was started with (-c / -np, -ngl) when there is one runner per model."""
    try:
        reply = requests.get(base + "/api/ps", timeout=VERSION_TIMEOUT_S)
        reply.raise_for_status()
        loaded = reply.json().get("models") or []
    except (requests.RequestException, ValueError, AttributeError) as exc:
        return ServedModels((), f"GET {base}/api/ps: {exc}")
    out = []
    for row in loaded:
        name = str(row.get("name") or row.get("model") or "")
        params: dict[str, str] = {}
        with contextlib.suppress(requests.RequestException, ValueError, AttributeError):
            shown = requests.post(
                base + "/api/show", json={"model": name}, timeout=VERSION_TIMEOUT_S
            )
            params = _params_text(str(shown.json().get("parameters") or ""))
        runner = runners[0] if len(runners) == 1 and len(loaded) == 1 else None
        ctx = _int(str(row.get("context_length"))) if row.get("context_length") else None
        source = "/api/ps, /api/show"
        if runner is not None and runner.ctx is not None:
            ctx = runner.ctx // (runner.slots or 1)
            source += f", runner pid {runner.pid} argv"
        gpu = runner.gpu_layers if runner is not None else _int(params.get("num_gpu"))
        out.append(ServedModel(
            name, source, ctx if ctx is not None else _int(params.get("num_ctx")), gpu,
            _float(params.get("temperature")), _int(str(row.get("size"))),
            _int(str(row.get("size_vram"))),
        ))  # fmt: skip
    return ServedModels(tuple(out), None)


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

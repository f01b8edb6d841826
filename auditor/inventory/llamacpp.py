"""llama.cpp as offgrid finds and reads it: llama-server or llama-cpp-python's server."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import psutil
import requests

from auditor.inventory import systemd
from auditor.inventory.cmdline import names_of, option, run_version
from auditor.inventory.interface import (
    EngineFacts,
    ProcessFact,
    RunnerFact,
    ServedModel,
    ServedModels,
)

PYTHON_SERVER_MODULES = ("llama_cpp.server", "llama_cpp.server.__main__")
# llama-server listens on 8080 by default, llama_cpp.server on 8000
LLAMA_SERVER_PORT = 8080
PYTHON_SERVER_PORT = 8000
# flags that make either server log prompts and outputs
VERBOSE_FLAGS = ("-v", "--verbose", "--log-verbose", "--verbose-prompt", "--log-verbosity")
_PY_VERSION = "import importlib.metadata as m; print(m.version('llama_cpp_python'))"


def is_llama_server(fact: ProcessFact) -> bool:
    return "llama-server" in names_of(fact)


def is_server(fact: ProcessFact) -> bool:
    """llama-server, or `python -m llama_cpp.server`."""
    if is_llama_server(fact):
        return True
    argv = fact.cmdline
    return any(
        arg == "-m" and argv[index + 1] in PYTHON_SERVER_MODULES
        for index, arg in enumerate(argv[:-1])
    )


def runner(_fact: ProcessFact) -> RunnerFact | None:
    """Neither llama-server nor llama-cpp-python's server starts runner processes."""
    return None


# llama-cpp-python's server defaults (llama_cpp/server/settings.py): n_ctx 2048, no GPU layers
PYTHON_SERVER_DEFAULTS = {"--n_ctx": "2048", "--n_gpu_layers": "0"}


def _served_args(main: ProcessFact) -> tuple[str | None, str | None, str]:
    """(context, GPU layers, where read) from the server's command line."""
    argv = main.cmdline
    if is_llama_server(main):
        ctx = option(argv, "-c", "--ctx-size")
        return ctx, option(argv, "-ngl", "--n-gpu-layers", "--gpu-layers"), "argv"
    ctx = option(argv, "--n_ctx") or PYTHON_SERVER_DEFAULTS["--n_ctx"]
    gpu = option(argv, "--n_gpu_layers") or PYTHON_SERVER_DEFAULTS["--n_gpu_layers"]
    return ctx, gpu, "argv (llama-cpp-python defaults where absent)"


def _to_int(text: str | None) -> int | None:
    return int(text) if text and text.lstrip("-").isdigit() else None


def served(engine: EngineFacts, base: str, _runners: tuple[RunnerFact, ...]) -> ServedModels:
    """The model /v1/models names, with the context and GPU layers the server was started
    with; the temperature is chosen per request (not stated)."""
    if engine.main is None:
        return ServedModels((), "the engine is not running")
    try:
        reply = requests.get(base + "/v1/models", timeout=10)
        reply.raise_for_status()
        # an id without an alias is the model's path: named by its file's stem
        ids = [
            Path(str(m.get("id"))).name.removesuffix(".gguf")
            for m in reply.json().get("data") or []
        ]
    except (requests.RequestException, ValueError, AttributeError) as exc:
        return ServedModels((), f"GET {base}/v1/models: {exc}")
    ctx, gpu, where = _served_args(engine.main)
    return ServedModels(
        tuple(
            ServedModel(name, f"/v1/models, {where}", _to_int(ctx), _to_int(gpu), None)
            for name in ids
        ),
        None,
    )


def configured_bind(main: ProcessFact | None, _env: Mapping[str, str]) -> tuple[str, int]:
    """--host and --port from the command line, else each server's own defaults."""
    argv = main.cmdline if main else ()
    native = main is not None and is_llama_server(main)
    host = option(argv, "--host") or ("127.0.0.1" if native else "localhost")
    port_text = option(argv, "--port")
    default_port = LLAMA_SERVER_PORT if native else PYTHON_SERVER_PORT
    return host, int(port_text) if port_text and port_text.isdigit() else default_port


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


def version(main: ProcessFact, _host: str, _port: int | None) -> str | None:
    """llama-cpp-python's version from the server's own interpreter, or llama-server's build."""
    argv0 = main.cmdline[0] if main.cmdline else ""
    if is_llama_server(main):
        build = re.search(r"version:\s*(\d+)", run_version([main.exe or argv0, "--version"]) or "")
        return f"b{build.group(1)}" if build else None
    # argv[0] keeps the virtualenv's path; /proc/PID/exe resolves to the base interpreter
    interpreter = _argv0_path(main.pid, argv0) or main.exe or ""
    if not interpreter:
        return None
    output = run_version([interpreter, "-I", "-c", _PY_VERSION])
    return output.splitlines()[-1].strip() if output else None


def model_paths(engine: EngineFacts, _env: Mapping[str, str]) -> list[Path]:
    """The --model file of the running command line, else of the unit's ExecStart=."""
    argv = engine.main.cmdline if engine.main else ()
    model = option(argv, "--model", "-m") if argv else None
    if model is None and engine.unit is not None:
        words = systemd.split_words(engine.unit.properties.get("ExecStart", ""))
        model = option(words, "--model")
    return [Path(model)] if model else []


def configures_engine(settings: tuple[str, ...]) -> bool:
    """Whether a drop-in configures the server: any variable, or its command line."""
    return any(key.startswith("Environment:") or key == "ExecStart" for key in settings)


def product(version_text: str) -> str:
    """llama-server reports a build number; the Python server its package version."""
    return "llama.cpp" if version_text.startswith("b") else "llama-cpp-python"

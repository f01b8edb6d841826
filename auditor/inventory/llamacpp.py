"""llama.cpp as offgrid finds and reads it: llama-server or llama-cpp-python's server."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import psutil

from auditor.inventory import systemd
from auditor.inventory.cmdline import names_of, option, run_version
from auditor.inventory.interface import EngineFacts, ProcessFact

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

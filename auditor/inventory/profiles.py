"""One profile per engine: everything offgrid does differently for Ollama and llama.cpp.

Discovery, the fact collectors, the checks and the integrity verification ask the profile
of `EngineFacts.kind`; nothing else branches on the engine's name. A new engine is a new
EngineKind member, a module with its readers (like auditor/inventory/ollama.py) and one
entry in PROFILES.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from auditor.engine_kind import EngineKind
from auditor.inventory import llamacpp, ollama
from auditor.inventory.interface import EngineFacts, ProcessFact, RunnerFact, ServedModels

Bind = Callable[[ProcessFact | None, Mapping[str, str]], tuple[str, int]]
VersionProbe = Callable[[ProcessFact, str, int | None], str | None]
ServerConfigReader = Callable[[ProcessFact | None, Mapping[str, str] | None], ollama.ServerConfig]


@dataclass(frozen=True)
class EngineProfile:
    kind: EngineKind
    units: tuple[str, ...]  # systemd units that run it, in the order they are looked for
    default_ports: tuple[int, ...]  # where it listens when nothing else is configured
    is_server: Callable[[ProcessFact], bool]  # the process is this engine's server
    configured_bind: Bind  # (host, port) its configuration asks for
    version: VersionProbe  # (main process, a loopback host it answers on, its port)
    # the model files or directories its configuration names (engine, merged environment)
    model_paths: Callable[[EngineFacts, Mapping[str, str]], list[Path]]
    store_layout: str  # "ollama" (blobs + manifests) or "gguf" (a directory of .gguf files)
    model_path_is_store: bool  # False: a model path is a file inside the store
    # whether a drop-in's settings (see UnitFacts.dropin_settings) configure the engine itself
    configures_engine: Callable[[tuple[str, ...]], bool]
    verbose_flags: tuple[str, ...]  # command-line flags that log prompts
    product: Callable[[str], str]  # its product name in the vulnerability table
    # a process of its tree that is one of its inference runners (None: not a runner)
    runner: Callable[[ProcessFact], RunnerFact | None]
    server_config: ServerConfigReader | None = None  # a settings file of its own, if any
    cors_path: str = "/"  # a route the CORS probe asks about
    origins_variable: str | None = None  # the setting that adds CORS origins, if any
    status_path: str | None = None  # a route where the server states its cloud status
    cloud_log_pattern: str | None = None  # the start-up log line that states it
    # variables that switch off the tools of its CLI's agent (each: set and non-empty)
    agent_switches: tuple[str, ...] = ()
    is_cli: Callable[[ProcessFact], bool] | None = None  # a process of its CLI (not the server)
    # the models it serves and their parameters (engine, base URL, its runners)
    served: Callable[[EngineFacts, str, tuple[RunnerFact, ...]], ServedModels] | None = None


PROFILES: Mapping[EngineKind, EngineProfile] = {
    EngineKind.OLLAMA: EngineProfile(
        kind=EngineKind.OLLAMA,
        units=("ollama.service",),
        default_ports=(ollama.DEFAULT_PORT,),
        is_server=ollama.is_server,
        configured_bind=ollama.configured_bind,
        version=ollama.version,
        model_paths=ollama.model_paths,
        store_layout="ollama",
        model_path_is_store=True,
        configures_engine=ollama.configures_engine,
        verbose_flags=(),
        product=ollama.product,
        runner=ollama.runner,
        server_config=ollama.server_config,
        cors_path="/api/tags",
        origins_variable="OLLAMA_ORIGINS",
        status_path="/api/status",
        cloud_log_pattern=ollama.CLOUD_LOG_PATTERN,
        agent_switches=ollama.AGENT_SWITCHES,
        is_cli=ollama.is_cli,
        served=ollama.served,
    ),
    EngineKind.LLAMACPP: EngineProfile(
        kind=EngineKind.LLAMACPP,
        units=("offgrid-llamacpp.service", "llamacpp.service"),
        default_ports=(llamacpp.LLAMA_SERVER_PORT, llamacpp.PYTHON_SERVER_PORT),
        is_server=llamacpp.is_server,
        configured_bind=llamacpp.configured_bind,
        version=llamacpp.version,
        model_paths=llamacpp.model_paths,
        store_layout="gguf",
        model_path_is_store=False,
        configures_engine=llamacpp.configures_engine,
        verbose_flags=llamacpp.VERBOSE_FLAGS,
        product=llamacpp.product,
        runner=llamacpp.runner,
        cors_path="/v1/models",
        served=llamacpp.served,
    ),
}


def runners(engine: EngineFacts) -> tuple[RunnerFact, ...]:
    """The engine's runners: the processes of its tree below the main one that are."""
    find = profile(engine.kind).runner
    main = engine.main.pid if engine.main else None
    return tuple(r for p in engine.tree if p.pid != main if (r := find(p)) is not None)


def profile(kind: str) -> EngineProfile:
    """The profile of an engine kind (an EngineKind, or its value as text)."""
    return PROFILES[EngineKind(kind)]


def model_paths(engine: EngineFacts) -> list[Path]:
    """Where the engine's models live, as its configuration says."""
    env = dict(engine.unit.environment) if engine.unit else {}
    env.update(engine.environ or {})
    return profile(engine.kind).model_paths(engine, env)


def model_store(engine: EngineFacts) -> Path | None:
    """The engine's model store: its model directory, or the directory of its model file."""
    paths = model_paths(engine)
    if not paths:
        return None
    return paths[0] if profile(engine.kind).model_path_is_store else paths[0].parent

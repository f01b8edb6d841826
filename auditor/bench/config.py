"""Everything one benchmark run is asked to do, and the client it talks through."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from auditor.bench.interface import Client
from auditor.bench.ollama import ROUTES as OLLAMA_ROUTES
from auditor.bench.ollama import OllamaClient
from auditor.bench.openai import ROUTES as OPENAI_ROUTES
from auditor.bench.openai import OpenAIClient
from auditor.bench.stats import LINEAR

APIS = ("ollama", "openai")
DEFAULT_MODES = {"ollama": "generate", "openai": "chat"}


@dataclass(frozen=True)
class BenchConfig:
    endpoint: str
    api: str
    model: str
    runs: int = 5
    warmup: int = 1
    categories: tuple[str, ...] = ()  # empty: every category of the suite
    concurrency: tuple[int, ...] = ()
    concurrency_category: str = "autocomplete"
    nonce: bool = True
    temperature: float | None = 0.0
    seed: int | None = 42
    failure_threshold: float = 0.1
    timeout_s: float = 300.0
    cold_start: bool = False
    restart_unit: str | None = None
    cloud_reference: Path | None = None
    prices: Path | None = None
    allow_remote: bool = False
    mode: str | None = None  # generate|chat (ollama), chat|completions (openai)
    retokenize: bool = True
    percentile_method: str = LINEAR
    # a gateway's bearer credential (never written anywhere) and where it was read from
    api_key: str | None = field(default=None, repr=False)
    credential_source: str | None = None  # "file" or "environment"

    @property
    def effective_mode(self) -> str:
        return self.mode or DEFAULT_MODES[self.api]


def route_for(config: BenchConfig) -> str:
    routes = OLLAMA_ROUTES if config.api == "ollama" else OPENAI_ROUTES
    return routes[config.effective_mode]


def make_client(config: BenchConfig) -> Client:
    """A fresh client with its own keep-alive session."""
    if config.api == "ollama":
        return OllamaClient(
            config.endpoint,
            config.model,
            mode=config.effective_mode,
            timeout_s=config.timeout_s,
            api_key=config.api_key,
        )
    return OpenAIClient(
        config.endpoint,
        config.model,
        mode=config.effective_mode,
        timeout_s=config.timeout_s,
        retokenize=config.retokenize,
        api_key=config.api_key,
    )

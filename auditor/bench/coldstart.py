"""Cold start, measured apart from the warm runs.

Ollama: unload the model with `keep_alive: 0`, confirm with `/api/ps`, then time the
first request and read the server's own `load_duration`. OpenAI-compatible engines
(llama.cpp) have no unload call, so the engine itself is restarted — only when offgrid
manages it: the embedded engine (auditor.embedded.llamacpp) or a systemd unit named with
`--restart-unit`. Otherwise the section says why nothing was measured.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, replace
from typing import Protocol

import requests

from auditor.bench.config import BenchConfig, make_client
from auditor.bench.interface import RequestResult
from auditor.bench.ollama import OllamaClient
from auditor.bench.results import ColdStart, RequestFigures
from auditor.bench.runner import build_request
from auditor.bench.suite import Category
from auditor.embedded import llamacpp
from auditor.errors import IncompleteError

READY_POLL_S = 0.05


class Restarter(Protocol):
    @property
    def description(self) -> str: ...

    def restart(self) -> None: ...


@dataclass
class SystemdRestarter:
    unit: str

    @property
    def description(self) -> str:
        return f"systemctl restart {self.unit}"

    def restart(self) -> None:
        done = subprocess.run(
            ["systemctl", "restart", self.unit], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise IncompleteError(f"cannot restart {self.unit}: {done.stderr.strip()[:200]}")


class ManagedEngineRestarter:
    """Restarts the embedded llama.cpp engine on the same port; `engine` is the live one."""

    description = "restart of the embedded llama.cpp engine (auditor.embedded.llamacpp)"

    def __init__(self, engine: llamacpp.RunningEngine) -> None:
        self.engine = engine

    def restart(self) -> None:
        llamacpp.stop(self.engine)
        config = replace(self.engine.config, port=self.engine.port)
        self.engine = llamacpp.start(config, self.engine.log_path)


def _request_figures(result: RequestResult) -> RequestFigures:
    return RequestFigures(
        ok=result.ok,
        error=result.error,
        ttft_ms=result.ttft_ms,
        total_ms=result.total_ms,
        output_tokens=result.output_tokens,
        server_load_ms=result.server.load_ms if result.server else None,
    )


def _wait_ready(endpoint: str, timeout_s: float) -> int:
    ready = llamacpp.wait_until_serving(endpoint, timeout_s)
    if ready is None:
        raise IncompleteError(f"engine at {endpoint} not ready {timeout_s:.0f}s after restart")
    return ready


def measure_restart(config: BenchConfig, category: Category, restarter: Restarter) -> ColdStart:
    started = time.perf_counter_ns()
    restarter.restart()
    ready = _wait_ready(config.endpoint, config.timeout_s)
    client = make_client(config)
    try:
        result = client.generate(build_request(category.prompts[0], category.max_tokens, config))
    finally:
        client.close()
    first_token = None if result.ttft_ns is None else (ready - started) / 1e6 + result.ttft_ns / 1e6
    return ColdStart(
        measured=True,
        method=restarter.description,
        restart_to_ready_ms=(ready - started) / 1e6,
        restart_to_first_token_ms=first_token,
        first_request=_request_figures(result),
        reason=None,
    )


def _wait_unloaded(client: OllamaClient, model: str, timeout_s: float) -> bool:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if not any(name == model or name.split(":")[0] == model for name in client.loaded_models()):
            return True
        time.sleep(READY_POLL_S)
    return False


def measure_ollama(config: BenchConfig, category: Category) -> ColdStart:
    client = OllamaClient(
        config.endpoint,
        config.model,
        mode=config.effective_mode,
        timeout_s=config.timeout_s,
        api_key=config.api_key,
    )
    try:
        client.unload()
        unloaded = _wait_unloaded(client, config.model, 30.0)
        result = client.generate(build_request(category.prompts[0], category.max_tokens, config))
    except requests.RequestException as exc:
        raise IncompleteError(f"cold start: cannot unload {config.model}: {exc}") from exc
    finally:
        client.close()
    return ColdStart(
        measured=True,
        method="ollama keep_alive=0 unload, then first request",
        unload_confirmed=unloaded,
        first_request=_request_figures(result),
        reason=None,
    )


def not_measured(reason: str) -> ColdStart:
    return ColdStart(measured=False, method=None, first_request=None, reason=reason)


def measure_cold_start(
    config: BenchConfig, category: Category, restarter: Restarter | None
) -> ColdStart:
    if restarter is not None:
        return measure_restart(config, category, restarter)
    if config.api == "ollama":
        return measure_ollama(config, category)
    return not_measured(
        "an OpenAI-compatible engine has no unload call and offgrid does not manage this "
        "one: pass --restart-unit UNIT to restart it through systemd"
    )

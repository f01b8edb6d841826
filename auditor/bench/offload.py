"""How much of the benchmarked model sits on the GPU, and which GPUs the machine has.

A model partly on the CPU serves at a fraction of its speed, so a benchmark that does not
say so misleads. The engine's own word is read after the measured runs, while the model is
still loaded:
- Ollama: `GET /api/ps`, the model's `size_vram` against its `size` (bytes); the CLI's
  `ollama ps` shows the same pair as "100% GPU", "100% CPU" or "48%/52% CPU/GPU".
- llama.cpp: the GPU layers the server was started with (`--n_gpu_layers`, llama-cpp-python's
  default 0; `-ngl` for llama-server; -1 is every layer) against the model's offloadable
  layers, its GGUF `<arch>.block_count` plus the output layer (what llama.cpp counts in
  "offloaded N/M layers to GPU"). The server is the process listening on the endpoint's port.
The machine's GPUs come from nvidia-smi (auditor.inventory.gpu). No GPU is said plainly
("CPU only"); a model not fully on a GPU that is there is a warning with its share.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from auditor.bench.results import GpuDeviceRef, GpuInfo, Offload
from auditor.errors import InputError
from auditor.inventory import gpu, llamacpp, sockets
from auditor.inventory.interface import GpuFacts, SocketFact
from auditor.inventory.processes import read_process
from auditor.models import gguf

TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Reading:
    """What the engine said about the model's placement (absent: not said)."""

    source: str
    size: int | None = None
    size_vram: int | None = None
    gpu_layers: int | None = None
    model_layers: int | None = None
    error: str | None = None


def gpu_info(facts: GpuFacts) -> GpuInfo:
    devices = tuple(
        GpuDeviceRef(d.name, d.driver_version, d.memory_total_mib) for d in facts.devices
    )
    return GpuInfo(devices, facts.cuda_version, facts.error)


def ratio_of(reading: Reading) -> float | None:
    """The share on the GPU: size_vram / size, else offloaded layers / the model's layers."""
    size, vram = reading.size, reading.size_vram
    if size is not None and vram is not None and size > 0 and 0 <= vram <= size:
        return round(vram / size, 4)
    layers, total = reading.gpu_layers, reading.model_layers
    if layers is not None and total:
        return 1.0 if layers < 0 else round(min(layers, total) / total, 4)
    return None


def _detail(reading: Reading) -> str:
    if reading.size is not None and reading.size_vram is not None:
        return f"size_vram {reading.size_vram} of size {reading.size} bytes, {reading.source}"
    if reading.gpu_layers is not None and reading.model_layers:
        layers = (
            "all" if reading.gpu_layers < 0 else str(min(reading.gpu_layers, reading.model_layers))
        )
        return f"{layers}/{reading.model_layers} layers on the GPU, {reading.source}"
    return reading.source


def _no_gpu(info: GpuInfo | None) -> bool:
    return info is not None and not info.devices


def _cpu_only(model: str, info: GpuInfo, reading: Reading) -> Offload:
    asked = ""
    if reading.gpu_layers:
        asked = (
            f"; the engine was started with {reading.gpu_layers} GPU layers, but there is no GPU"
        )
    return Offload(
        state="cpu-only",
        summary=f"CPU only: no GPU on this machine ({info.error or 'no device'}); {model} runs "
        f"on the CPU and these are CPU figures{asked}",
        source=f"nvidia-smi; {reading.source}",
        ratio=0.0,
        size=reading.size,
        size_vram=reading.size_vram,
        gpu_layers=reading.gpu_layers,
        model_layers=reading.model_layers,
        error=reading.error,
    )


def _placed(model: str, share: float, gpus: str) -> tuple[str, str, str | None]:
    """(state, summary, warning) for a known share on the GPU."""
    if share >= 1.0:
        return "gpu", f"{model} is 100% on the GPU", None
    if share <= 0.0:
        warning = (
            f"{model} is not on the GPU at all (0% GPU, 100% CPU) although {gpus}: "
            "these are CPU figures, far below the GPU's"
        )
        return "cpu", f"{model} is 100% on the CPU", warning
    cpu = 1.0 - share
    warning = (
        f"{model} is not fully on the GPU: {share:.1%} on the GPU, {cpu:.1%} on the CPU; "
        "the CPU part runs at a fraction of the speed, so these figures understate the GPU"
    )
    return "partial", f"{model} is {share:.1%} on the GPU, {cpu:.1%} on the CPU", warning


def _gpus(info: GpuInfo | None) -> str:
    if info is None or not info.devices:
        return "the engine reports a GPU"
    names = ", ".join(d.name for d in info.devices)
    return f"the machine has {len(info.devices)} GPU(s) ({names})"


def judge(model: str, info: GpuInfo | None, reading: Reading) -> Offload:
    """The offload record from the GPUs found (None: not this machine's) and the reading."""
    share = ratio_of(reading)
    if _no_gpu(info) and not reading.size_vram:
        assert info is not None
        return _cpu_only(model, info, reading)
    if share is None:
        why = reading.error or "the engine did not state it"
        return Offload(
            state="unknown",
            summary=f"GPU offload of {model} unknown: {why}",
            source=reading.source,
            gpu_layers=reading.gpu_layers,
            model_layers=reading.model_layers,
            warning=f"GPU offload of {model} could not be read ({why}): the figures may be "
            "partly or wholly CPU figures",
            error=reading.error,
        )
    state, summary, warning = _placed(model, share, _gpus(info))
    return Offload(
        state=state,
        summary=f"{summary} ({_detail(reading)})",
        source=reading.source,
        ratio=share,
        size=reading.size,
        size_vram=reading.size_vram,
        gpu_layers=reading.gpu_layers,
        model_layers=reading.model_layers,
        warning=warning,
        error=reading.error,
    )


def _same_model(name: str, wanted: str) -> bool:
    def norm(text: str) -> str:
        return text if ":" in text.rsplit("/", 1)[-1] else text + ":latest"

    return norm(name) == norm(wanted)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_ollama(base_url: str, model: str) -> Reading:
    """The model's row of Ollama's `GET /api/ps` (size and size_vram in bytes)."""
    source = "GET /api/ps"
    session = requests.Session()
    session.trust_env = False  # loopback only: never through a proxy
    try:
        reply = session.get(base_url.rstrip("/") + "/api/ps", timeout=TIMEOUT_S)
        reply.raise_for_status()
        rows = reply.json().get("models") or []
    except (requests.RequestException, ValueError, AttributeError) as exc:
        return Reading(source, error=f"{source}: {exc}")
    finally:
        session.close()
    names = [str(r.get("name") or r.get("model") or "") for r in rows if isinstance(r, dict)]
    for row in rows:
        if isinstance(row, dict) and _same_model(str(row.get("name") or row.get("model")), model):
            return Reading(source, _int(row.get("size")), _int(row.get("size_vram")))
    loaded = ", ".join(names) or "none"
    return Reading(source, error=f"{model} is not loaded according to {source} (loaded: {loaded})")


def _listener(port: int) -> int | None:
    """The pid of the process listening on loopback `port` (None: not found or not readable)."""
    table = sockets.table()

    def wanted(s: SocketFact) -> bool:
        return (
            s.protocol == "tcp"
            and sockets.listening(s)
            and s.local_port == port
            and sockets.is_loopback(s.local_address)
        )

    found = [s for s in sockets.resolve(table, wanted) if wanted(s)]
    return next((s.pid for s in found if s.pid is not None), None)


def _model_layers(pid: int, model: str | None) -> tuple[int | None, str | None]:
    if model is None:
        return None, "the server's command line names no model file"
    path = model if os.path.isabs(model) else os.path.join(f"/proc/{pid}/cwd", model)
    try:
        blocks = gguf.read_info(Path(path)).block_count
    except (InputError, OSError) as exc:
        return None, f"cannot read the model's layers from {model}: {exc}"
    if blocks is None:
        return None, f"{model} states no block_count"
    return blocks + 1, None  # the repeating blocks plus the output layer


def read_llamacpp(port: int) -> Reading:
    """The GPU layers the llama.cpp server on `port` was started with, against its model's."""
    pid = _listener(port)
    if pid is None:
        return Reading("the server's argv", error=f"no readable process listens on port {port}")
    try:
        main = read_process(pid)
    except psutil.Error as exc:
        return Reading("the server's argv", error=f"cannot read pid {pid}: {exc}")
    if not llamacpp.is_server(main):
        return Reading(f"pid {pid}", error=f"pid {pid} on port {port} is not a llama.cpp server")
    layers, model, where = llamacpp.offload_args(main)
    total, problem = _model_layers(pid, model)
    source = f"pid {pid} {where}, GGUF block_count"
    return Reading(source, gpu_layers=layers, model_layers=total, error=problem)


def read_offload(
    api: str, base_url: str, port: int, model: str, local: bool
) -> tuple[GpuInfo | None, Offload]:
    """The GPUs (this machine's only when the engine is on it) and the model's offload."""
    info = gpu_info(gpu.collect()) if local else None
    if api == "ollama":
        reading = read_ollama(base_url, model)
    elif local:
        reading = read_llamacpp(port)
    else:
        reading = Reading("not read", error="the engine's process is on another host")
    return info, judge(model, info, reading)

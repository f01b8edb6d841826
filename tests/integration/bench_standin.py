"""Run the Ollama-protocol stand-in (tests/standins/ollama_standin.py) as a real process.

It runs under the system's plain python3 when there is one, as it does inside the
offline test workstation: that also proves it needs nothing beyond the standard library.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from auditor.embedded.llamacpp import free_loopback_port

STANDIN = Path(__file__).resolve().parents[1] / "standins" / "ollama_standin.py"
MODEL = "smollm2:135m"


def plain_python() -> str:
    return shutil.which("python3", path="/usr/bin:/bin") or sys.executable


def _blob(store: Path, data: bytes) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (store / "blobs").mkdir(parents=True, exist_ok=True)
    (store / "blobs" / digest.replace(":", "-")).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def make_store(store: Path) -> Path:
    """A model store with one manifest, laid out as Ollama's: manifests/<host>/<namespace>/
    <model>/<tag> and blobs/sha256-<hex>."""
    config = _blob(
        store,
        json.dumps(
            {
                "model_format": "gguf",
                "model_family": "llama",
                "model_type": "135M",
                "file_type": "Q4_1",
            }
        ).encode(),
    )
    layer = _blob(store, b"the stand-in does not read model weights; its upstream engine does")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.ollama.image.model", **layer}],
    }
    path = store / "manifests" / "registry.ollama.ai" / "library" / "smollm2" / "135m"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))
    return path


@contextlib.contextmanager
def standin(tmp: Path, env: dict[str, str], command: list[str] | None = None) -> Iterator[str]:
    """Start the stand-in with env on a free loopback port (by `command`, e.g. a release's
    bin/ollama, else the server script itself); yields its base URL."""
    port = free_loopback_port()
    store = tmp / "models"
    make_store(store)
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "OFFGRID_STANDIN"))
    }
    full_env.update(
        {"OLLAMA_HOST": f"127.0.0.1:{port}", "OLLAMA_MODELS": str(store), "HOME": str(tmp), **env}
    )
    log = (tmp / "standin.log").open("ab")
    process = subprocess.Popen(
        command or [plain_python(), str(STANDIN), "serve"],
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, process)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the stand-in exited with {process.returncode}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url + "/api/version", timeout=1).ok:
                return
        time.sleep(0.05)
    raise RuntimeError("the stand-in did not answer")

"""bench's loopback guard against a real non-loopback peer in a test-owned namespace.

The stand-in listens on 198.18.77.1 inside the namespace; the bench runs there too. Without
--allow-remote nothing reaches the peer; with it, the request does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.bench_standin import MODEL, STANDIN, make_store, plain_python
from tests.integration.netns import PEER_ADDRESS, Namespace, network_namespace

pytestmark = [pytest.mark.root, pytest.mark.integration]
URL = f"http://{PEER_ADDRESS}:11434"


def _wait_answering(ns: Namespace, process: subprocess.Popen[bytes]) -> None:
    probe = f"import urllib.request; urllib.request.urlopen('{URL}/api/version', timeout=1)"
    for _ in range(100):
        assert process.poll() is None, "the stand-in exited"
        if ns.run([plain_python(), "-c", probe], timeout=10).returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError("the stand-in never answered inside the namespace")


def _bench(ns: Namespace, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable,
        "-m",
        "auditor",
        "bench",
        "--endpoint",
        URL,
        "--api",
        "ollama",
        "--model",
        MODEL,
        "--categories",
        "autocomplete",
        "--runs",
        "1",
        "--warmup",
        "1",
        *extra,
    ]
    return ns.run(argv, timeout=120)


def test_remote_peer_is_refused_unless_allowed(tmp_path: Path) -> None:
    make_store(tmp_path / "models")
    log = tmp_path / "standin.log"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "OLLAMA_HOST": f"{PEER_ADDRESS}:11434",
        "OLLAMA_MODELS": str(tmp_path / "models"),
    }
    with network_namespace("og-bench-remote") as ns, log.open("wb") as sink:
        process = subprocess.Popen(
            ns.command([plain_python(), str(STANDIN), "serve"]),
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_answering(ns, process)
            refused = _bench(ns)
            seen_after_refusal = log.read_text()
            allowed = _bench(ns, "--allow-remote")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
    assert refused.returncode == 2, refused.stderr
    assert "refusing to send benchmark prompts" in refused.stderr and PEER_ADDRESS in refused.stderr
    assert "POST" not in seen_after_refusal  # not a single request reached the peer
    # allowed: the request reaches the stand-in, which has no engine and says so (503)
    assert allowed.returncode == 3 and "HTTP 503" in allowed.stderr, allowed.stderr
    assert '"POST /api/generate HTTP/1.1" 503' in log.read_text()

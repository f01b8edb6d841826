"""Helpers for the bench unit tests: recorded streams served over real loopback sockets,
and synthetic results for the pure parts (sections, crossover, charts)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from auditor.bench.config import BenchConfig
from auditor.bench.interface import RequestResult, TokenSource
from auditor.bench.results import BenchmarkSection
from auditor.bench.runner import CategoryRun
from auditor.bench.section import RunFacts, benchmark_section
from auditor.bench.suite import load_suite
from auditor.report.bench_json import benchmark_to_json

STREAMS = Path(__file__).parent / "bench_streams"


@dataclass
class Script:
    """What the recorded server sends: status, body pieces with a pause before each."""

    pieces: Sequence[tuple[float, bytes]]
    status: int = 200
    chunked: bool = True
    content_type: str = "text/event-stream"
    # Other paths the server answers with a JSON body (e.g. a tokenizer endpoint).
    json_routes: dict[str, bytes] = field(default_factory=dict)


def recorded(name: str, pause_s: float = 0.0, first_pause_s: float = 0.0) -> Script:
    lines = (STREAMS / name).read_bytes().splitlines(keepends=True)
    pieces = [(first_pause_s if i == 1 else pause_s, line) for i, line in enumerate(lines)]
    return Script(pieces)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    script: Script

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        script = self.server.script  # type: ignore[attr-defined]
        if self.path in script.json_routes:
            self._json(script.json_routes[self.path])
            return
        self.send_response(script.status)
        self.send_header("Content-Type", script.content_type)
        if script.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        for pause, data in script.pieces:
            time.sleep(pause)
            if script.chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                self.wfile.write(data)
            self.wfile.flush()
        if script.chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _json(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serving(script: Script) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.script = script  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def result(
    ttft_ms: float,
    total_ms: float,
    tokens: int | None,
    ok: bool = True,
    finish_reason: str | None = "stop",
) -> RequestResult:
    ttft = int(ttft_ms * 1e6)
    total = int(total_ms * 1e6)
    count = tokens or 2
    chunks = tuple(ttft + (total - ttft) * i // max(1, count - 1) for i in range(count))
    return RequestResult(
        ok=ok,
        total_ns=total,
        ttft_ns=ttft if ok else None,
        chunk_ns=chunks if ok else (),
        output_tokens=tokens if ok else None,
        token_source=TokenSource.SERVER_USAGE if ok and tokens else None,
        error=None if ok else "HTTP 500: boom",
        finish_reason=finish_reason if ok else None,
    )


def synthetic_section(
    ttft_ms: float = 50.0, tps: float = 40.0, **config_overrides: object
) -> BenchmarkSection:
    """A benchmark section for every suite category from made-up but consistent requests."""
    suite = load_suite()
    runs = []
    for category in suite.categories:
        tokens = category.target_tokens[0]
        total = ttft_ms + (tokens - 1) * 1000.0 / tps
        results = tuple(result(ttft_ms + i, total + i, tokens) for i in range(4))
        runs.append(CategoryRun(category, results, tuple(p.id for p in category.prompts[:4])))
    config = BenchConfig(
        endpoint="http://127.0.0.1:11434", api="ollama", model="m", runs=4, **config_overrides
    )  # type: ignore[arg-type]
    facts = RunFacts(("127.0.0.1",), "/api/generate", "2026-11-24T04:00:00+00:00", "")
    return benchmark_section(config, suite, runs, facts)


def synthetic_json(ttft_ms: float = 50.0, tps: float = 40.0) -> dict[str, Any]:
    """The JSON form of `synthetic_section`, as `offgrid bench` writes it."""
    return benchmark_to_json(synthetic_section(ttft_ms, tps))

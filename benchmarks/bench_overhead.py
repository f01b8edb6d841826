"""Harness overhead: TTFT seen by offgrid's client vs a minimal raw-socket client.

Both talk to the same engine in the same run, alternating request by request (ABAB…) so
drift in the engine or the machine hits both alike. Every request carries its own nonce
of equal length, so neither side gets a warmer prefix cache. The raw client is the
reference: one keep-alive socket, a hand-written HTTP/1.1 request, `recv` until the
first SSE line with content. Goal: the medians differ by at most 1 ms.

    .venv/bin/python benchmarks/bench_overhead.py [--pairs 40] [--endpoint URL --model NAME]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from auditor.bench.interface import GenerationRequest
from auditor.bench.openai import OpenAIClient
from auditor.embedded.llamacpp import EngineConfig, bundled_model_path, running

PROMPT = "Complete the code. Reply with code only.\ndef fib(n: int) -> int:"
MAX_TOKENS = 8
IDLE_RECONNECT_S = 2.0  # uvicorn drops idle keep-alive connections after 5 s


class RawClient:
    """The least a client can do: write bytes, read bytes, find the first content line."""

    def __init__(self, url: str, model: str) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.model = parts.hostname or "127.0.0.1", parts.port or 80, model
        self.reconnect()

    def reconnect(self) -> None:
        with contextlib.suppress(AttributeError, OSError):
            self.sock.close()
        self.sock = socket.create_connection((self.host, self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.last_used = time.monotonic()

    def ttft_ms(self, prompt: str) -> float:
        return self.timed(prompt, MAX_TOKENS)[0]

    def timed(self, prompt: str, max_tokens: int) -> tuple[float, float]:
        """(TTFT, total) in ms for one streamed chat completion."""
        body = json.dumps(
            {
                "model": self.model,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": max_tokens,
                "stream": True,
                "temperature": 0.0,
                "seed": 42,
                "stream_options": {"include_usage": True},
            }
        ).encode()
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        if time.monotonic() - self.last_used > IDLE_RECONNECT_S:
            self.reconnect()  # the engine may have closed an idle keep-alive connection
        start = time.perf_counter_ns()
        self.sock.sendall(head + body)
        first: float | None = None
        buffer = b""
        while True:
            data = self.sock.recv(65536)
            now = time.perf_counter_ns()
            if not data:
                raise ConnectionError("engine closed the connection")
            buffer += data
            if first is None and b'"content": "' in buffer.replace(b'"content": ""', b""):
                first = (now - start) / 1e6
            if buffer.endswith(b"0\r\n\r\n"):  # end of the chunked body
                break
        assert first is not None, "no content chunk seen"
        self.last_used = time.monotonic()
        return first, (time.perf_counter_ns() - start) / 1e6

    def close(self) -> None:
        self.sock.close()


def nonce_prompt() -> str:
    return f"[request {secrets.token_hex(6)}]\n{PROMPT}"


def measure(url: str, model: str, pairs: int) -> tuple[list[float], list[float]]:
    ours = OpenAIClient(url, model, retokenize=False)
    raw = RawClient(url, model)
    offgrid_ms, raw_ms = [], []
    try:
        for _ in range(3):  # warm both connections and the engine
            ours.generate(GenerationRequest(nonce_prompt(), MAX_TOKENS))
            raw.ttft_ms(nonce_prompt())
        for index in range(pairs):
            order = (0, 1) if index % 2 == 0 else (1, 0)
            for side in order:
                if side == 0:
                    result = ours.generate(GenerationRequest(nonce_prompt(), MAX_TOKENS))
                    assert result.ok and result.ttft_ms is not None, result.error
                    offgrid_ms.append(result.ttft_ms)
                else:
                    raw_ms.append(raw.ttft_ms(nonce_prompt()))
    finally:
        ours.close()
        raw.close()
    return offgrid_ms, raw_ms


@contextlib.contextmanager
def engine_url(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    if args.endpoint:
        yield args.endpoint, args.model
        return
    with (
        tempfile.TemporaryDirectory() as tmp,
        running(
            EngineConfig(model=bundled_model_path(), threads=2), Path(tmp) / "engine.log"
        ) as engine,
    ):
        yield engine.base_url, engine.config.alias


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--endpoint")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    args = parser.parse_args()
    with engine_url(args) as (url, model):
        offgrid_ms, raw_ms = measure(url, model, args.pairs)
    ours, ref = statistics.median(offgrid_ms), statistics.median(raw_ms)
    diff = ours - ref
    # Each pair ran back to back, so its difference cancels most of the engine's drift.
    paired = statistics.median(a - b for a, b in zip(offgrid_ms, raw_ms, strict=True))
    report = {
        "median_paired_difference_ms": paired,
        "pairs": args.pairs,
        "offgrid_ttft_median_ms": ours,
        "raw_socket_ttft_median_ms": ref,
        "median_difference_ms": diff,
        "ratio": ours / ref,
        "goal_ms": 1.0,
        "met": abs(diff) <= 1.0,
    }
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

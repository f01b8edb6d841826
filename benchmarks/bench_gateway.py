"""Gateway overhead: TTFT and decode tok/s through the gateway vs the engine directly.

The engine is llama.cpp's server with SmolLM2 on loopback; the gateway is the configuration
role offgrid_gateway renders, served by Debian's nginx as an unprivileged user in front of
it. Three sides share one run, rotating request by request (A B C, B C A, …) so drift in the
engine or the machine hits all alike: the engine directly, the gateway's local listener
(plain HTTP, route allow-list) and its team listener (TLS 1.3 + a bearer token hashed by
njs per request). Each request carries its own nonce, so none gets a warmer prefix cache.
One raw keep-alive socket per side, a hand-written HTTP/1.1 request; TTFT is the first SSE
line with content, decode tok/s is (content events - 1) / (last event - first event).

Goal: median TTFT added by the gateway ≤ 2 ms, median decode tok/s within 2 %.

    .venv/bin/python benchmarks/bench_gateway.py [--rounds 24] [--max-tokens 48]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import socket
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auditor.embedded.llamacpp import EngineConfig, bundled_model_path, running
from tests.gateway_support import (
    gateway,
    make_tls,
    new_token,
    store_entry,
    write_store,
)

PROMPT = "Write a Python function that returns the n-th Fibonacci number, with a docstring."
IDLE_RECONNECT_S = 2.0  # uvicorn drops idle keep-alive connections after 5 s
READ_TIMEOUT_S = 120.0


class RawSide:
    """One keep-alive connection to one listener; TLS and a token when given."""

    def __init__(self, name: str, listen: str, model: str, *, ca: Path | None = None,
                 token: str | None = None) -> None:  # fmt: skip
        self.name, self.model, self.token = name, model, token
        host, port = listen.rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.context = ssl.create_default_context(cafile=str(ca)) if ca else None
        self.reconnect()

    def reconnect(self) -> None:
        with contextlib.suppress(AttributeError, OSError):
            self.sock.close()
        raw = socket.create_connection((self.host, self.port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.settimeout(READ_TIMEOUT_S)
        self.sock: socket.socket = (
            self.context.wrap_socket(raw, server_hostname=self.host) if self.context else raw
        )
        self.last_used = time.monotonic()

    def request(self, prompt: str, max_tokens: int) -> tuple[float, float | None]:
        """(TTFT ms, decode tok/s) for one streamed chat completion."""
        body = json.dumps({
            "model": self.model, "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens, "stream": True, "temperature": 0.0, "seed": 42,
        }).encode()  # fmt: skip
        auth = f"Authorization: Bearer {self.token}\r\n" if self.token else ""
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        if time.monotonic() - self.last_used > IDLE_RECONNECT_S:
            self.reconnect()
        start = time.perf_counter_ns()
        self.sock.sendall(head + body)
        events: list[int] = []
        buffer = b""
        while not buffer.endswith(b"0\r\n\r\n"):
            data = self.sock.recv(65536)
            now = time.perf_counter_ns()
            if not data:
                raise ConnectionError(f"{self.name} closed the connection")
            fresh = data.replace(b'"content": ""', b"").replace(b'"content":""', b"")
            events += [now] * (fresh.count(b'"content": "') + fresh.count(b'"content":"'))
            buffer = buffer[-8:] + data
        self.last_used = time.monotonic()
        if not events:
            raise AssertionError(f"{self.name}: no content event")
        ttft = (events[0] - start) / 1e6
        span_s = (events[-1] - events[0]) / 1e9
        return ttft, (len(events) - 1) / span_s if len(events) > 1 and span_s > 0 else None

    def close(self) -> None:
        self.sock.close()


def measure(
    sides: list[RawSide], rounds: int, max_tokens: int
) -> dict[str, list[tuple[float, float | None]]]:
    results: dict[str, list[tuple[float, float | None]]] = {side.name: [] for side in sides}
    for side in sides:  # warm every connection and the engine
        for _ in range(2):
            side.request(f"[warm {secrets.token_hex(6)}] {PROMPT}", max_tokens)
    for index in range(rounds):
        sys.stderr.write(f"round {index + 1}/{rounds}\n")
        shift = index % len(sides)
        for side in sides[shift:] + sides[:shift]:
            results[side.name].append(
                side.request(f"[{secrets.token_hex(6)}] {PROMPT}", max_tokens)
            )
    return results


def summarize(results: dict[str, list[tuple[float, float | None]]]) -> dict[str, object]:
    direct = results["direct"]
    report: dict[str, object] = {"rounds": len(direct)}
    for name in ("direct", "gateway_local", "gateway_team_tls"):
        runs = results[name]
        report[f"{name}_ttft_median_ms"] = round(statistics.median(r[0] for r in runs), 2)
        rates = [r[1] for r in runs if r[1] is not None]
        report[f"{name}_decode_median_tok_s"] = round(statistics.median(rates), 2)
    for name in ("gateway_local", "gateway_team_tls"):
        runs = results[name]
        # one round's requests ran back to back: their difference cancels most engine drift
        added = statistics.median(g[0] - d[0] for g, d in zip(runs, direct, strict=True))
        ratios = [g[1] / d[1] for g, d in zip(runs, direct, strict=True) if g[1] and d[1]]
        ratio = statistics.median(ratios)
        report[f"{name}_added_ttft_median_ms"] = round(added, 2)
        report[f"{name}_decode_ratio_median"] = round(ratio, 4)
        report[f"{name}_met"] = added <= 2.0 and ratio >= 0.98
    report["goal"] = "added TTFT <= 2 ms median, decode tok/s ratio >= 0.98 median"
    return report


@contextlib.contextmanager
def setup(directory: Path) -> Iterator[list[RawSide]]:
    cert, key = make_tls(directory)
    token_id, token = new_token()
    store = directory / "tokens.json"
    write_store(store, [store_entry(token_id, "bench", token)])
    with running(
        EngineConfig(model=bundled_model_path(), threads=2), directory / "engine.log"
    ) as engine, gateway(
        f"127.0.0.1:{engine.port}", offgrid_gateway_team_enabled=True,
        offgrid_gateway_tls_certificate=str(cert), offgrid_gateway_tls_key=str(key),
        offgrid_gateway_token_store=str(store), offgrid_gateway_rate_per_minute=100000,
        offgrid_gateway_rate_burst=1000,
    ) as gw:  # fmt: skip
        model = engine.config.alias
        sides = [
            RawSide("direct", f"127.0.0.1:{engine.port}", model),
            RawSide("gateway_local", str(gw.variables["offgrid_gateway_local_listen"]), model),
            RawSide("gateway_team_tls", str(gw.variables["offgrid_gateway_team_listen"]), model,
                    ca=cert, token=token),
        ]  # fmt: skip
        try:
            yield sides
        finally:
            for side in sides:
                side.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, setup(Path(tmp)) as sides:
        results = measure(sides, args.rounds, args.max_tokens)
    sys.stdout.write(json.dumps(summarize(results), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

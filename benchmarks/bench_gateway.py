"""Gateway overhead: TTFT and decode tok/s through the gateway vs the engine directly.

The engine is llama.cpp's server with SmolLM2 on loopback; the gateway is the configuration
role offgrid_gateway renders, served by Debian's nginx as an unprivileged user in front of
it. Three sides share one run, rotating request by request (A B C, B C A, …) so drift in the
engine or the machine hits all alike: the engine directly, the gateway's local listener
(plain HTTP, route allow-list) and its team listener (TLS 1.3 + a bearer token hashed by
njs per request). Each request carries its own nonce, so none gets a warmer prefix cache.
One raw keep-alive socket per side, a hand-written HTTP/1.1 request; TTFT is the first SSE
line with content, decode tok/s is (content events - 1) / (last event - first event).

Goal: median TTFT added by the gateway ≤ 2 ms, median decode tok/s within 2 %. Each is
judged on a 95 % bootstrap interval of the median of the per-round differences: "met" or
"not met" only where the whole interval lies on one side of the goal, "inconclusive" where
the engine's own spread from request to request is wider than the goal. A second, quieter
measure isolates the gateway's own cost: GET /v1/models through each side, rotating the
same way, with nothing decoded (the added round trip is what the gateway adds to any TTFT).

    .venv/bin/python benchmarks/bench_gateway.py [--rounds 40] [--max-tokens 32] [--roundtrips 400]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
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
ADDED_TTFT_GOAL_MS = 2.0
DECODE_RATIO_GOAL = 0.98


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

    def get(self, path: str) -> float:
        """Milliseconds for one GET answered with Content-Length (the whole answer read)."""
        auth = f"Authorization: Bearer {self.token}\r\n" if self.token else ""
        head = f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{auth}\r\n".encode()
        if time.monotonic() - self.last_used > IDLE_RECONNECT_S:
            self.reconnect()
        start = time.perf_counter_ns()
        self.sock.sendall(head)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            buffer += self._recv()
        header, _, body = buffer.partition(b"\r\n\r\n")
        if not header.startswith(b"HTTP/1.1 200"):
            raise AssertionError(f"{self.name}: {header.splitlines()[0]!r}")
        length = int(next(
            line.split(b":", 1)[1] for line in header.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ))  # fmt: skip
        while len(body) < length:
            body += self._recv()
        elapsed = (time.perf_counter_ns() - start) / 1e6
        self.last_used = time.monotonic()
        return elapsed

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError(f"{self.name} closed the connection")
        return data

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


def roundtrips(sides: list[RawSide], count: int) -> dict[str, list[float]]:
    """GET /v1/models on every side, rotating: the gateway's own cost, with no decoding."""
    results: dict[str, list[float]] = {side.name: [] for side in sides}
    for side in sides:
        for _ in range(20):
            side.get("/v1/models")
    for index in range(count):
        shift = index % len(sides)
        for side in sides[shift:] + sides[:shift]:
            results[side.name].append(side.get("/v1/models"))
    return results


def median_ci(values: list[float], seed: int = 7) -> tuple[float, float, float]:
    """Median and a 95 % bootstrap interval of it (2 000 resamples, fixed seed)."""
    pick = random.Random(seed)
    medians = sorted(statistics.median(pick.choices(values, k=len(values))) for _ in range(2000))
    return statistics.median(values), medians[50], medians[1949]


def verdict(added: tuple[float, float, float], ratio: tuple[float, float, float]) -> str:
    """met / not met only where the interval is on one side of the goal; else inconclusive."""
    if added[2] <= ADDED_TTFT_GOAL_MS and ratio[1] >= DECODE_RATIO_GOAL:
        return "met"
    if added[1] > ADDED_TTFT_GOAL_MS or ratio[2] < DECODE_RATIO_GOAL:
        return "not met"
    return "inconclusive: the engine's own spread is wider than the goal; add --rounds"


def _triple(values: tuple[float, float, float], digits: int) -> list[float]:
    return [round(value, digits) for value in values]


def summarize(
    results: dict[str, list[tuple[float, float | None]]], trips: dict[str, list[float]]
) -> dict[str, object]:
    direct = results["direct"]
    report: dict[str, object] = {"rounds": len(direct), "roundtrips": len(trips["direct"])}
    for name in ("direct", "gateway_local", "gateway_team_tls"):
        runs = results[name]
        report[f"{name}_ttft_median_ms"] = round(statistics.median(r[0] for r in runs), 2)
        rates = [r[1] for r in runs if r[1] is not None]
        report[f"{name}_decode_median_tok_s"] = round(statistics.median(rates), 2)
        report[f"{name}_models_roundtrip_median_ms"] = round(statistics.median(trips[name]), 3)
    for name in ("gateway_local", "gateway_team_tls"):
        runs = results[name]
        # one round's requests ran back to back: their difference cancels most engine drift
        added = median_ci([g[0] - d[0] for g, d in zip(runs, direct, strict=True)])
        ratio = median_ci([g[1] / d[1] for g, d in zip(runs, direct, strict=True) if g[1] and d[1]])
        trip = median_ci([g - d for g, d in zip(trips[name], trips["direct"], strict=True)])
        report[f"{name}_added_ttft_ms_median_ci95"] = _triple(added, 2)
        report[f"{name}_decode_ratio_median_ci95"] = _triple(ratio, 4)
        report[f"{name}_added_roundtrip_ms_median_ci95"] = _triple(trip, 3)
        report[f"{name}_goal"] = verdict(added, ratio)
    report["goal"] = (
        f"added TTFT <= {ADDED_TTFT_GOAL_MS} ms median, decode tok/s ratio >= "
        f"{DECODE_RATIO_GOAL} median, each judged on its 95 % interval"
    )
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
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--roundtrips", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, setup(Path(tmp)) as sides:
        trips = roundtrips(sides, args.roundtrips)
        results = measure(sides, args.rounds, args.max_tokens)
    sys.stdout.write(json.dumps(summarize(results, trips), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The "one workstation serves a team" sweep: 1, 2, 4 … simultaneous users.

Each user is a thread with its own client and keep-alive session, started together
behind a barrier, sending `runs` requests back to back. Aggregate throughput is the
output tokens of every successful request (counted as the single-user runs count them,
source by source) over the wall time from the first request's start to the last one's
end (each user's first stream without a count adds one short probe of the server's
tokenizer endpoint to that wall time, and with the re-tokenizing fallback every request
adds one more call, so throughput errs low). Failures are recorded, not fatal: under
load they are the finding.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from auditor.bench.config import BenchConfig
from auditor.bench.interface import Client, RequestResult
from auditor.bench.results import Level
from auditor.bench.runner import build_request
from auditor.bench.stats import summarize
from auditor.bench.suite import Category
from auditor.bench.transport import CredentialRefused


@dataclass(frozen=True)
class LevelRun:
    users: int
    results: tuple[RequestResult, ...]
    wall_ns: int


@dataclass(frozen=True)
class _User:
    client: Client
    offset: int  # users start at different prompts so they do not send identical requests
    sink: list[RequestResult]
    refused: list[CredentialRefused]  # a gateway's 401/403 ends the sweep, after the join


def _user(user: _User, category: Category, config: BenchConfig, barrier: threading.Barrier) -> None:
    client, offset, sink = user.client, user.offset, user.sink
    barrier.wait()
    try:
        for index in range(config.runs):
            prompt = category.prompts[(offset + index) % len(category.prompts)]
            sink.append(client.generate(build_request(prompt, category.max_tokens, config)))
    except CredentialRefused as exc:
        user.refused.append(exc)
    finally:
        client.close()


def run_level(
    users: int, category: Category, config: BenchConfig, make_client: Callable[[], Client]
) -> LevelRun:
    barrier = threading.Barrier(users + 1)
    sinks: list[list[RequestResult]] = [[] for _ in range(users)]
    refused: list[CredentialRefused] = []
    threads = [
        threading.Thread(
            target=_user,
            args=(_User(make_client(), i, sinks[i], refused), category, config, barrier),
            name=f"bench-user-{i}",
            daemon=True,
        )
        for i in range(users)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter_ns()
    for thread in threads:
        thread.join()
    wall = time.perf_counter_ns() - start
    if refused:
        raise refused[0]
    return LevelRun(users, tuple(r for sink in sinks for r in sink), wall)


def level_section(level: LevelRun, method: str) -> Level:
    ok = [r for r in level.results if r.ok]
    counted = [r.output_tokens for r in ok if r.output_tokens is not None]
    wall_s = level.wall_ns / 1e9
    return Level(
        users=level.users,
        requests=len(level.results),
        failures=len(level.results) - len(ok),
        wall_s=wall_s,
        throughput_tps=sum(counted) / wall_s if counted and wall_s > 0 else None,
        requests_per_s=len(ok) / wall_s if wall_s > 0 else None,
        ttft_ms=summarize([r.ttft_ms for r in ok if r.ttft_ms is not None], method),
        total_ms=summarize([r.total_ms for r in ok], method),
        errors=tuple(sorted({r.error for r in level.results if r.error})[:5]),
    )


def run_sweep(
    levels: tuple[int, ...],
    category: Category,
    config: BenchConfig,
    make_client: Callable[[], Client],
    on_level: Callable[[int], None] | None = None,
) -> tuple[Level, ...]:
    sections: list[Level] = []
    for users in levels:
        sections.append(
            level_section(run_level(users, category, config, make_client), config.percentile_method)
        )
        if on_level:
            on_level(users)
    return tuple(sections)

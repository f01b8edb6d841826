"""Agreement: client-side decode tok/s vs the engine's own counts and timings.

The engine is llama.cpp (llama-cpp-python's server), whose perf log prints, per request,
"eval time = X ms / N runs": its own decode count and time. The client figure is
offgrid's (tokens - 1) / (total - TTFT), tokens as the bench records them. Goal: the
median per-request difference within 5 %.

Two engine figures, both from its own log: `eval time` covers only the decode calls, so
sampling between them is invisible to it but not to any client; `total - prompt eval time`
is the engine's whole generation time after the prompt. The goal is judged against the
latter; the former is reported beside it. A minimal raw-socket client on alternate
requests, rated with the engine's own token count, shows what is the harness's share.

    .venv/bin/python benchmarks/bench_agreement.py [--requests 12] [--verbose]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from auditor.bench.interface import GenerationRequest
from auditor.bench.openai import OpenAIClient
from auditor.bench.runner import with_nonce
from auditor.bench.suite import load_suite
from auditor.embedded.llamacpp import EngineConfig, bundled_model_path, running

EVAL_LINE = re.compile(
    rb"^llama_perf_context_print:\s+eval time =\s+([\d.]+) ms /\s+(\d+) runs", re.M
)
PROMPT_LINE = re.compile(rb"^llama_perf_context_print: prompt eval time =\s+([\d.]+) ms", re.M)
TOTAL_LINE = re.compile(rb"^llama_perf_context_print:\s+total time =\s+([\d.]+) ms", re.M)
MAX_TOKENS = 160


def _raw_client_class() -> Any:
    spec = importlib.util.spec_from_file_location(
        "bench_overhead", Path(__file__).with_name("bench_overhead.py")
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RawClient


class EngineLog:
    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, path.stat().st_size

    def last_eval(self) -> tuple[float, int, float]:
        """The newest request's (eval ms, decode runs, total - prompt eval ms).

        The last figure is the engine's wall time for generation after the prompt: its
        decode calls plus the sampling and bookkeeping between them.
        """
        data = self.path.read_bytes()
        fresh = data[self.offset :]
        self.offset = len(data)
        ms, runs = EVAL_LINE.findall(fresh)[-1]
        wall = float(TOTAL_LINE.findall(fresh)[-1]) - float(PROMPT_LINE.findall(fresh)[-1])
        return float(ms), int(runs), wall


def pct(a: float, b: float) -> float:
    return (a - b) / b * 100


def run(requests_n: int) -> list[dict[str, Any]]:
    prompts = [p.text for c in load_suite().categories for p in c.prompts]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "engine.log"
        with running(EngineConfig(model=bundled_model_path(), threads=2), log_path) as engine:
            client = OpenAIClient(engine.base_url, engine.config.alias)
            raw = _raw_client_class()(engine.base_url, engine.config.alias)
            client.generate(GenerationRequest(with_nonce(prompts[0], True), 16))  # warm-up
            log = EngineLog(log_path)
            for index in range(requests_n):
                prompt = prompts[index % len(prompts)]
                result = client.generate(GenerationRequest(with_nonce(prompt, True), MAX_TOKENS))
                assert result.ok, result.error
                eval_ms, runs, wall_ms = log.last_eval()
                if result.decode_tps is None:  # a one-token answer has no decode rate
                    continue
                ttft, total = raw.timed(with_nonce(prompt, True), MAX_TOKENS)
                raw_eval_ms, raw_runs, _ = log.last_eval()
                rows.append({
                    "offgrid_tps": result.decode_tps, "engine_tps": runs / eval_ms * 1000,
                    "engine_wall_tps": runs / wall_ms * 1000,
                    "offgrid_tokens": result.output_tokens, "engine_runs": runs,
                    "raw_tps": (raw_runs - 1) / (total - ttft) * 1000,
                    "raw_engine_tps": raw_runs / raw_eval_ms * 1000,
                })  # fmt: skip
            client.close()
            raw.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--verbose", action="store_true", help="list every request's figures")
    args = parser.parse_args()
    rows = run(args.requests)
    offgrid_vs_engine = statistics.median(pct(r["offgrid_tps"], r["engine_tps"]) for r in rows)
    against_wall = statistics.median(pct(r["offgrid_tps"], r["engine_wall_tps"]) for r in rows)
    report: dict[str, Any] = {
        "requests": len(rows),
        "offgrid_tps_median": statistics.median(r["offgrid_tps"] for r in rows),
        "engine_tps_median": statistics.median(r["engine_tps"] for r in rows),
        "offgrid_vs_engine_eval_time_median_pct": offgrid_vs_engine,
        "offgrid_vs_engine_generation_time_median_pct": against_wall,
        "raw_socket_vs_engine_eval_time_median_pct": statistics.median(
            pct(r["raw_tps"], r["raw_engine_tps"]) for r in rows
        ),
        "goal_pct": 5.0,
        "met": abs(against_wall) <= 5.0,
    }
    if args.verbose:
        report["rows"] = rows
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

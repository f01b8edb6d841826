"""Agreement: client-side decode tok/s vs the engine's own counts and timings.

The engine is llama.cpp (llama-cpp-python's server), whose perf log prints, per request,
"eval time = X ms / N runs": its own decode count and time. The client figure is
offgrid's (tokens - 1) / (total - TTFT), tokens as the bench records them. Goal: the
median per-request difference within 5 %.

The engine's eval time covers only its decode calls; the server's per-token work around
them (sampling, detokenizing, JSON, SSE) is invisible to it but not to any client. A
minimal raw-socket client on alternate requests, rated with the engine's own token count,
separates that from the harness: offgrid vs raw is the harness's share.

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
from auditor.engines.llamacpp import EngineConfig, bundled_model_path, running

EVAL_LINE = re.compile(
    rb"^llama_perf_context_print:\s+eval time =\s+([\d.]+) ms /\s+(\d+) runs", re.M
)
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

    def last_eval(self) -> tuple[float, int]:
        """The newest request's (eval ms, decode runs) written since the last call."""
        data = self.path.read_bytes()
        found = EVAL_LINE.findall(data[self.offset :])
        self.offset = len(data)
        ms, runs = found[-1]
        return float(ms), int(runs)


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
                eval_ms, runs = log.last_eval()
                if result.decode_tps is None:  # a one-token answer has no decode rate
                    continue
                ttft, total = raw.timed(with_nonce(prompt, True), MAX_TOKENS)
                raw_eval_ms, raw_runs = log.last_eval()
                rows.append({
                    "offgrid_tps": result.decode_tps, "engine_tps": runs / eval_ms * 1000,
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
    report: dict[str, Any] = {
        "requests": len(rows),
        "offgrid_tps_median": statistics.median(r["offgrid_tps"] for r in rows),
        "engine_tps_median": statistics.median(r["engine_tps"] for r in rows),
        "offgrid_vs_engine_median_pct": offgrid_vs_engine,
        "raw_socket_vs_engine_median_pct": statistics.median(
            pct(r["raw_tps"], r["raw_engine_tps"]) for r in rows
        ),
        "token_count_equal_to_engine_runs": sum(
            r["offgrid_tokens"] == r["engine_runs"] for r in rows
        ),
        "goal_pct": 5.0,
        "met": abs(offgrid_vs_engine) <= 5.0,
    }
    if args.verbose:
        report["rows"] = rows
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

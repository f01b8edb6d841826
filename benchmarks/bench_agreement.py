"""Agreement: client-side decode tok/s vs the engine's own counts and timings.

The engine here is llama.cpp (llama-cpp-python's server), whose perf log prints, per
request, "eval time = X ms / N runs": its own decode count and time. The client figure
is offgrid's (tokens - 1) / (total - TTFT), with tokens as the bench records them. Each
request's two rates are paired; the goal is a median difference within 5 %.

    .venv/bin/python benchmarks/bench_agreement.py [--requests 12]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

from auditor.bench.interface import GenerationRequest
from auditor.bench.openai import OpenAIClient
from auditor.bench.runner import with_nonce
from auditor.bench.suite import load_suite
from auditor.engines.llamacpp import EngineConfig, bundled_model_path, running

EVAL_LINE = re.compile(
    rb"^llama_perf_context_print:\s+eval time =\s+([\d.]+) ms /\s+(\d+) runs", re.M
)
MAX_TOKENS = 160


def engine_rates(log: Path, offset: int) -> tuple[list[tuple[float, int]], int]:
    data = log.read_bytes()
    found = [(float(ms), int(runs)) for ms, runs in EVAL_LINE.findall(data[offset:])]
    return found, len(data)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=12)
    args = parser.parse_args()
    prompts = [p.text for c in load_suite().categories for p in c.prompts]
    pairs = []
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "engine.log"
        with running(EngineConfig(model=bundled_model_path(), threads=2), log) as engine:
            client = OpenAIClient(engine.base_url, engine.config.alias)
            client.generate(GenerationRequest(with_nonce(prompts[0], True), 16))  # warm-up
            offset = log.stat().st_size
            for index in range(args.requests):
                prompt = with_nonce(prompts[index % len(prompts)], True)
                result = client.generate(GenerationRequest(prompt, MAX_TOKENS))
                assert result.ok and result.decode_tps, result.error
                found, offset = engine_rates(log, offset)
                eval_ms, runs = found[-1]
                pairs.append(
                    {
                        "client_tps": result.decode_tps,
                        "engine_tps": runs / eval_ms * 1000,
                        "client_tokens": result.output_tokens,
                        "engine_runs": runs,
                    }
                )
            client.close()
    diffs = [(p["client_tps"] - p["engine_tps"]) / p["engine_tps"] * 100 for p in pairs]
    median_diff = statistics.median(diffs)
    report = {
        "requests": len(pairs),
        "client_tps_median": statistics.median(p["client_tps"] for p in pairs),
        "engine_tps_median": statistics.median(p["engine_tps"] for p in pairs),
        "median_difference_pct": median_diff,
        "max_abs_difference_pct": max(abs(d) for d in diffs),
        "token_count_matches": sum(p["client_tokens"] == p["engine_runs"] for p in pairs),
        "goal_pct": 5.0,
        "met": abs(median_diff) <= 5.0,
    }
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Token counts: the bench's stream count against the server's own `usage`, per source.

llama-cpp-python's server streams no usage, so the bench counts the stream's text
chunks (source `chunks`, a lower bound with a stated upper bound). The reference is the
same server's non-streamed answer to the same request (temperature 0, same seed),
whose `usage.completion_tokens` is its own count of what it generated; a pair counts
only when both answers are the same text, i.e. the same generation. Beside it, the
re-tokenized count (source `client-retokenized`) of the same text. Goal: every chunk
count within its bounds of the server's count, and equal to it whenever the bound is
exact (ASCII output).

    .venv/bin/python benchmarks/bench_token_counts.py [--max-tokens 160] [--prompts 20] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import requests

from auditor.bench.interface import GenerationRequest, TokenSource
from auditor.bench.openai import OpenAIClient
from auditor.bench.suite import load_suite
from auditor.embedded.llamacpp import EngineConfig, RunningEngine, bundled_model_path, running

SEED = 7


def _server_usage(engine: RunningEngine, prompt: str, max_tokens: int) -> tuple[str, int]:
    reply = requests.post(
        f"{engine.base_url}/v1/chat/completions",
        json={
            "model": engine.config.alias,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "seed": SEED,
        },
        timeout=300,
    ).json()
    return str(reply["choices"][0]["message"]["content"]), int(reply["usage"]["completion_tokens"])


def _row(client: OpenAIClient, engine: RunningEngine, prompt: str, cap: int) -> dict[str, Any]:
    streamed, text = client.generate_with_text(GenerationRequest(prompt, cap, 0.0, SEED))
    assert streamed.ok and streamed.token_source == TokenSource.CHUNKS, streamed
    server_text, usage = _server_usage(engine, prompt, cap)
    return {
        "same_generation": server_text == text,
        "usage": usage,
        "chunks": streamed.output_tokens,
        "chunks_max": streamed.output_tokens_max,
        "retokenized": client.count_tokens(text),
        "finish_reason": streamed.finish_reason,
    }


def run(max_tokens: int, count: int) -> list[dict[str, Any]]:
    suite = load_suite()
    # Round-robin over the categories, so a short run still covers each of them.
    by_category = [[p.text for p in c.prompts] for c in suite.categories]
    prompts = [
        group[i]
        for i in range(max(map(len, by_category)))
        for group in by_category
        if i < len(group)
    ]
    prompts = prompts[:count]
    with tempfile.TemporaryDirectory() as tmp:
        config = EngineConfig(model=bundled_model_path(), threads=2)
        with running(config, Path(tmp) / "engine.log") as engine:
            client = OpenAIClient(engine.base_url, engine.config.alias, timeout_s=300)
            try:
                return [_row(client, engine, prompt, max_tokens) for prompt in prompts]
            finally:
                client.close()


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    same = [r for r in rows if r["same_generation"]]
    exact_bound = [r for r in same if r["chunks"] == r["chunks_max"]]
    within = [r for r in same if r["chunks"] <= r["usage"] <= r["chunks_max"]]
    return {
        "requests": len(rows),
        "same_generation": len(same),
        "chunks_equal_usage": sum(1 for r in same if r["chunks"] == r["usage"]),
        "chunks_within_bounds": len(within),
        "exact_bound": len(exact_bound),
        "exact_bound_equal_usage": sum(1 for r in exact_bound if r["chunks"] == r["usage"]),
        "retokenized_equal_usage": sum(1 for r in same if r["retokenized"] == r["usage"]),
        "retokenized_max_abs_error": max(
            (abs(r["retokenized"] - r["usage"]) for r in same if r["retokenized"] is not None),
            default=None,
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--prompts", type=int, default=20, help="suite prompts to send")
    parser.add_argument("--verbose", action="store_true", help="list every request's counts")
    args = parser.parse_args()
    rows = run(args.max_tokens, args.prompts)
    report = summary(rows)
    report["met"] = (
        report["chunks_within_bounds"] == report["same_generation"]
        and report["exact_bound_equal_usage"] == report["exact_bound"]
    )
    if args.verbose:
        report["rows"] = rows
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0 if report["met"] else 1


if __name__ == "__main__":
    sys.exit(main())

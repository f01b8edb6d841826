"""offgrid bench against the real engine (llama.cpp server + SmolLM2) on loopback."""

from __future__ import annotations

import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from auditor.bench.benchmark import run_benchmark
from auditor.bench.coldstart import ManagedEngineRestarter, measure_cold_start
from auditor.bench.config import BenchConfig
from auditor.bench.interface import GenerationRequest, TokenSource
from auditor.bench.openai import OpenAIClient
from auditor.bench.suite import load_suite
from auditor.cli import main
from auditor.console import Console
from auditor.embedded import llamacpp
from auditor.embedded.llamacpp import EngineConfig, RunningEngine, bundled_model_path
from auditor.report.bench_json import benchmark_to_json

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "auditor" / "data" / "examples"


def _schema_validate(section: dict[str, Any]) -> None:
    text = resources.files("auditor.data").joinpath("benchmark.schema.json").read_text("utf-8")
    jsonschema.Draft202012Validator(json.loads(text)).validate(section)


@pytest.fixture(scope="module")
def full_run(llama_engine: RunningEngine) -> dict[str, Any]:
    """Every category, two runs each, and a two-user concurrency level.

    No warm-ups: the session engine is warm already and their rules are unit-tested; this
    keeps the module near a minute on two cores.
    """
    config = BenchConfig(
        endpoint=llama_engine.base_url,
        api="openai",
        model=llama_engine.config.alias,
        runs=2,
        warmup=0,
        concurrency=(2,),
        timeout_s=300,
    )
    section = run_benchmark(config, Console(stdout=io.StringIO(), stderr=io.StringIO()))
    return benchmark_to_json(section)


def test_every_category_ran_without_failures(full_run: dict[str, Any]) -> None:
    assert [c["name"] for c in full_run["categories"]] == list(load_suite().names)
    for category in full_run["categories"]:
        assert (category["requests"], category["failures"]) == (2, 0), category["errors"]
    _schema_validate(full_run)
    assert full_run["suite"]["version"] == load_suite().version
    assert full_run["endpoint_addresses"] == ["127.0.0.1"]


def test_figures_are_positive_and_consistent(full_run: dict[str, Any]) -> None:
    for category in full_run["categories"]:
        samples = category["samples"]
        for ttft, total, tokens in zip(
            samples["ttft_ms"], samples["total_ms"], samples["output_tokens"], strict=True
        ):
            assert 0 < ttft < total
            assert 1 < tokens <= category["max_tokens"]
        for metric in ("ttft_ms", "total_ms", "tpot_ms", "itl_ms", "decode_tps", "output_tokens"):
            summary = category[metric]
            assert summary["min"] > 0 and summary["min"] <= summary["median"] <= summary["p95"]
            assert summary["p95"] <= summary["p99"] <= summary["max"]
        # llama-cpp-python streams carry no usage: the count is the stream's text chunks
        assert category["token_sources"] == {"chunks": 2}
        # TPOT and the client rate are two views of one measurement
        assert category["tpot_ms"]["min"] == pytest.approx(1000 / category["decode_tps"]["max"])
    assert full_run["notes"] and "text chunks" in full_run["notes"][0]


def test_cpu_only_engine_is_said_plainly(full_run: dict[str, Any]) -> None:
    """The real llama.cpp server started without GPU layers on a machine without a GPU: its
    offload is read from its argv and its model's GGUF header (SmolLM2-135M: 30 blocks and
    the output layer), and the section says "CPU only"."""
    _schema_validate(full_run)
    offload = full_run["offload"]
    assert (offload["gpu_layers"], offload["model_layers"]) == (0, 31)
    assert offload["ratio"] == 0.0
    if full_run["gpu"]["devices"]:  # a GPU machine: a CPU-only engine there is a warning
        assert offload["state"] == "cpu" and "not on the GPU at all" in offload["warning"]
    else:
        assert offload["state"] == "cpu-only" and "warning" not in offload
        assert offload["summary"].startswith("CPU only: no GPU on this machine")
    assert "--n_gpu_layers" in offload["source"] or "defaults" in offload["source"]


def test_two_concurrent_users_all_get_answers(full_run: dict[str, Any]) -> None:
    (level,) = full_run["concurrency"]
    assert (level["users"], level["requests"], level["failures"]) == (2, 4, 0), level["errors"]
    assert level["throughput_tps"] > 0 and level["ttft_ms"]["min"] > 0


def test_token_counts_hold_their_stated_bounds(llama_engine: RunningEngine) -> None:
    """llama-cpp-python's streams carry no usage: the count is the stream's text chunks.

    Properties that hold for any model output: the count is between the content-bearing
    chunks and its stated upper bound, never above the cap, and a stream the server cut
    at the cap (finish_reason "length") generated exactly the cap, which lies within the
    bounds. Exact equality with usage is not asserted: no client-side count is the
    inverse of generation on every build.
    """
    client = OpenAIClient(llama_engine.base_url, llama_engine.config.alias, timeout_s=120)
    cap = 48
    try:
        for category in load_suite().categories:
            streamed = client.generate(GenerationRequest(category.prompts[1].text, cap, 0.0, 7))
            assert streamed.ok, streamed.error
            assert streamed.token_source == TokenSource.CHUNKS
            low, high = streamed.output_tokens, streamed.output_tokens_max
            assert low is not None and high is not None
            assert len(streamed.chunk_ns) <= low <= min(cap, high)
            if streamed.finish_reason == "length":
                assert low <= cap <= high
    finally:
        client.close()


def test_cold_start_restarts_the_managed_engine(tmp_path: Path) -> None:
    engine = llamacpp.start(
        EngineConfig(model=bundled_model_path(), threads=2), tmp_path / "cold.log"
    )
    restarter = ManagedEngineRestarter(engine)
    try:
        first_pid = engine.pid
        config = BenchConfig(
            endpoint=engine.base_url, api="openai", model=engine.config.alias, timeout_s=120
        )
        cold = measure_cold_start(config, load_suite().category("autocomplete"), restarter)
        assert restarter.engine.pid != first_pid and restarter.engine.port == engine.port
    finally:
        llamacpp.stop(restarter.engine)
        llamacpp.stop(engine)
    assert cold.measured and cold.first_request is not None and cold.first_request.ok, cold
    assert cold.restart_to_ready_ms is not None and cold.restart_to_ready_ms > 100  # a real load
    assert cold.restart_to_first_token_ms is not None
    assert cold.restart_to_first_token_ms > cold.restart_to_ready_ms


def test_cli_writes_results_with_crossover_and_tco(
    llama_engine: RunningEngine, tmp_path: Path
) -> None:
    output = tmp_path / "bench.json"
    err = io.StringIO()
    code = main(
        [
            "bench",
            "--endpoint",
            llama_engine.base_url,
            "--api",
            "openai",
            "--model",
            llama_engine.config.alias,
            "--runs",
            "2",
            "--warmup",
            "0",
            "--categories",
            "autocomplete",
            "--cloud-reference",
            str(EXAMPLES / "cloud-reference.seed.json"),
            "--prices",
            str(EXAMPLES / "prices.example.toml"),
            "--cold-start",
            "--output",
            str(output),
        ],
        Console(stdout=io.StringIO(), stderr=err),
    )
    assert code == 0, err.getvalue()
    section = json.loads(output.read_text())
    _schema_validate(section)
    assert section["crossover"]["cloud"]["label"].startswith("SEED FIGURES")
    assert section["tco"]["label"].startswith("EXAMPLE VALUES")
    assert (
        section["cold_start"]["measured"] is False
        and "--restart-unit" in section["cold_start"]["reason"]
    )

"""The Ollama client against the Ollama-protocol stand-in relaying to the real engine."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from auditor.bench.interface import GenerationRequest, TokenSource
from auditor.bench.ollama import OllamaClient
from auditor.bench.suite import load_suite
from auditor.cli import main
from auditor.console import Console
from auditor.embedded.llamacpp import RunningEngine, bundled_model_path
from auditor.report import markdown, prometheus
from auditor.report.html import render as render_html
from auditor.report.load import from_dict
from tests.integration.bench_standin import MODEL, STANDIN, plain_python, standin
from tests.standins import nvidia_smi_standin

pytestmark = pytest.mark.integration
GPU_DATA = Path(__file__).resolve().parents[1] / "unit" / "data" / "gpu"
SHORT = GenerationRequest(
    prompt=load_suite().category("autocomplete").prompts[0].text, max_tokens=40
)
NS_FIELDS = (
    "total_duration",
    "load_duration",
    "prompt_eval_duration",
    "eval_duration",
    "eval_count",
)


def _bench(url: str, *extra: str) -> tuple[int, str]:
    err = io.StringIO()
    code = main(
        [
            "bench",
            "--endpoint",
            url,
            "--api",
            "ollama",
            "--model",
            MODEL,
            "--categories",
            "autocomplete",
            *extra,
        ],
        Console(stdout=io.StringIO(), stderr=err),
    )
    return code, err.getvalue()


def _upstream(engine: RunningEngine) -> dict[str, str]:
    return {"OFFGRID_STANDIN_UPSTREAM": engine.base_url}


def test_standin_reports_version_and_refuses_unknown_models(
    tmp_path: Path, llama_engine: RunningEngine
) -> None:
    version = subprocess.run(
        [plain_python(), str(STANDIN), "--version"],
        capture_output=True,
        text=True,
        check=True,
        env={"OFFGRID_STANDIN_VERSION": "0.17.1"},
    )
    assert version.stdout == "ollama version is 0.17.1\n"
    with standin(tmp_path, _upstream(llama_engine)) as url:
        tags = requests.get(url + "/api/tags", timeout=5).json()["models"]
        assert [m["name"] for m in tags] == [MODEL]
        missing = requests.post(
            url + "/api/generate", json={"model": "nope", "prompt": "x"}, timeout=5
        )
        assert missing.status_code == 404 and "not found" in missing.json()["error"]


@pytest.mark.parametrize("mode", ["generate", "chat"])
def test_done_object_carries_nanosecond_durations(
    tmp_path: Path, llama_engine: RunningEngine, mode: str
) -> None:
    with standin(tmp_path, _upstream(llama_engine)) as url:
        body: dict[str, Any] = {
            "model": MODEL,
            "options": {"num_predict": 40, "temperature": 0, "seed": 1},
        }
        body.update(
            {"messages": [{"role": "user", "content": SHORT.prompt}]}
            if mode == "chat"
            else {"prompt": SHORT.prompt}
        )
        start = time.perf_counter_ns()
        with requests.post(f"{url}/api/{mode}", json=body, stream=True, timeout=120) as response:
            lines = [json.loads(line) for line in response.iter_lines(chunk_size=None) if line]
        client_ns = time.perf_counter_ns() - start
        *pieces, done = lines
        assert done["done"] is True and all(not p["done"] for p in pieces)
        assert all(isinstance(done[k], int) for k in NS_FIELDS), done
        assert (
            done["eval_duration"] > 1_000_000 and done["prompt_eval_duration"] > 1_000_000
        )  # > 1 ms in ns
        assert (
            done["prompt_eval_duration"] + done["eval_duration"]
            <= done["total_duration"]
            <= client_ns
        )
        text = "".join(p["message"]["content"] if mode == "chat" else p["response"] for p in pieces)
        count = requests.post(
            llama_engine.base_url + "/extras/tokenize/count", json={"input": text}, timeout=30
        ).json()["count"]
        assert done["eval_count"] == count

        client = OllamaClient(url, MODEL, mode=mode, timeout_s=120)
        result = client.generate(SHORT)
        client.close()
    assert result.ok, result.error
    assert result.token_source == TokenSource.SERVER_EVAL_COUNT and result.output_tokens
    assert result.server is not None and result.server.eval_ms and result.server.total_ms
    assert result.server.total_ms <= result.total_ms  # the server's span sits inside the client's
    assert result.ttft_ms is not None and 0 < result.ttft_ms < result.total_ms


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("malformed", "malformed line"),
        ("http500", "HTTP 500: stand-in fault injection"),
        ("reset", "Error"),
    ],
)
def test_broken_streams_are_counted_failures(
    tmp_path: Path, llama_engine: RunningEngine, fault: str, expected: str
) -> None:
    with standin(tmp_path, {**_upstream(llama_engine), "OFFGRID_STANDIN_FAULT": fault}) as url:
        client = OllamaClient(url, MODEL, timeout_s=60)
        result = client.generate(SHORT)
        client.close()
    assert not result.ok and expected in (result.error or ""), result.error


def test_a_stalling_server_times_out_as_a_failure(
    tmp_path: Path, llama_engine: RunningEngine
) -> None:
    env = {
        **_upstream(llama_engine),
        "OFFGRID_STANDIN_FAULT": "stall",
        "OFFGRID_STANDIN_STALL_S": "8",
    }
    with standin(tmp_path, env) as url:
        client = OllamaClient(url, MODEL, timeout_s=1.0)
        start = time.monotonic()
        result = client.generate(SHORT)
        client.close()
        assert time.monotonic() - start < 5
    assert not result.ok and "timed out" in (result.error or "")
    assert result.ttft_ms is not None  # the first pieces did arrive before the stall


def test_too_many_failed_runs_end_the_bench_with_exit_3(
    tmp_path: Path, llama_engine: RunningEngine
) -> None:
    env = {
        **_upstream(llama_engine),
        "OFFGRID_STANDIN_FAULT": "http500",
        "OFFGRID_STANDIN_FAULT_EVERY": "2",
    }
    with standin(tmp_path, env) as url:
        code, err = _bench(url, "--runs", "4", "--warmup", "0", "--failure-threshold", "0.25")
    assert code == 3 and "autocomplete: 2/4 runs failed (50% > threshold 25%)" in err


def test_without_upstream_the_standin_answers_503_and_the_warmup_aborts(tmp_path: Path) -> None:
    with standin(tmp_path, {}) as url:
        response = requests.post(
            url + "/api/generate", json={"model": MODEL, "prompt": "x"}, timeout=5
        )
        assert response.status_code == 503 and "no upstream" in response.json()["error"]
        code, err = _bench(url, "--runs", "1", "--warmup", "1")
    assert code == 3 and "warm-up 1/1 for autocomplete failed: HTTP 503" in err


def test_cold_start_pays_a_real_load_after_keep_alive_0(tmp_path: Path) -> None:
    command = (
        f"{sys.executable} -m llama_cpp.server --model {bundled_model_path()} --host 127.0.0.1 "
        "--port {port} --n_threads 2 --interrupt_requests False"
    )
    output = tmp_path / "bench.json"
    with standin(tmp_path, {"OFFGRID_STANDIN_ENGINE_CMD": command}) as url:
        code, err = _bench(
            url, "--runs", "2", "--warmup", "1", "--cold-start", "--output", str(output)
        )
        assert requests.get(url + "/api/ps", timeout=5).json()[
            "models"
        ]  # loaded again after the cold run
    assert code == 0, err
    section = json.loads(output.read_text())
    cold = section["cold_start"]
    assert cold["measured"] and cold["unload_confirmed"], cold
    first = cold["first_request"]
    assert (
        first["ok"] and first["server_load_ms"] > 200
    )  # a real engine start, measured by the server
    assert first["ttft_ms"] > first["server_load_ms"]  # the client waited through that load
    warm = section["categories"][0]
    assert (
        warm["server"]["source"] == "ollama"
        and warm["server"]["load_ms"]["max"] < first["server_load_ms"]
    )
    assert warm["token_sources"] == {"server-eval-count": 2}


def test_status_and_show_follow_the_environment_and_store(tmp_path: Path) -> None:
    (tmp_path / ".ollama").mkdir()
    (tmp_path / ".ollama" / "server.json").write_text('{"disable_ollama_cloud": true}')
    # /api/status exists from Ollama 0.16.2 on (the stand-in answers 404 before)
    with standin(tmp_path, {"OLLAMA_NO_CLOUD": "1", "OFFGRID_STANDIN_VERSION": "0.17.1"}) as url:
        assert requests.get(url + "/api/status", timeout=5).json() == {
            "cloud": {"disabled": True, "source": "both"}
        }
        shown = requests.post(url + "/api/show", json={"model": "smollm2:135m"}, timeout=5).json()
        assert shown["details"]["quantization_level"] == "Q4_1"
        assert requests.get(url + "/api/ps", timeout=5).json() == {"models": []}
    (tmp_path / ".ollama" / "server.json").unlink()
    with standin(tmp_path, {"OFFGRID_STANDIN_VERSION": "0.17.1"}) as url:
        assert requests.get(url + "/api/status", timeout=5).json() == {
            "cloud": {"disabled": False, "source": "none"}
        }


def _nvidia_smi_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The nvidia-smi stand-in (a recorded RTX 4090) first on PATH: the bench sees a GPU."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    recorded = (GPU_DATA / "nvidia-smi-rtx4090.csv").read_text()
    (bindir / "nvidia-smi").write_text(nvidia_smi_standin.script(recorded))
    (bindir / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ.get('PATH', '')}")


def test_partial_gpu_offload_from_api_ps_is_a_warning_in_every_output(
    tmp_path: Path, llama_engine: RunningEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/api/ps says half the model is on the GPU (size_vram = size / 2, as a real partial
    offload reads): the section records the ratio, the terminal and the report warn."""
    _nvidia_smi_on_path(tmp_path, monkeypatch)
    env = {**_upstream(llama_engine), "OFFGRID_STANDIN_VRAM_SHARE": "0.5"}
    with standin(tmp_path, env) as url:
        ps = requests.get(url + "/api/ps", timeout=5).json()["models"]
        assert ps == []  # nothing loaded before the bench
        output = tmp_path / "report.json"
        code, err = _bench(
            url, "--runs", "1", "--warmup", "0", "--format", "json", "--output", str(output)
        )
        loaded = requests.get(url + "/api/ps", timeout=5).json()["models"][0]
    assert code == 0, err
    assert loaded["size_vram"] == round(loaded["size"] * 0.5) > 0
    report = from_dict(json.loads(output.read_text()))
    assert report.benchmark is not None and report.benchmark.offload is not None
    offload = report.benchmark.offload
    assert (offload.state, offload.ratio, offload.source) == ("partial", 0.5, "GET /api/ps")
    assert (offload.size, offload.size_vram) == (loaded["size"], loaded["size_vram"])
    assert report.benchmark.gpu is not None
    assert report.benchmark.gpu.devices[0].name == "NVIDIA GeForce RTX 4090"
    warning = f"{MODEL} is not fully on the GPU: 50.0% on the GPU, 50.0% on the CPU"
    assert f"offgrid: warning: {warning}" in err
    assert warning in render_html(report) and warning in markdown.render(report)
    assert 'offgrid_bench_gpu_offload_ratio{model="smollm2:135m",state="partial"} 0.5' in (
        prometheus.render(report)
    )


def test_no_gpu_and_nothing_in_vram_is_cpu_only(
    tmp_path: Path, llama_engine: RunningEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")  # no nvidia-smi here
    with standin(tmp_path, _upstream(llama_engine)) as url:
        output = tmp_path / "bench.json"
        code, err = _bench(url, "--runs", "1", "--warmup", "0", "--output", str(output))
    assert code == 0, err
    offload = json.loads(output.read_text())["offload"]
    assert (offload["state"], offload["ratio"]) == ("cpu-only", 0.0)
    assert "GPU offload: CPU only: no GPU on this machine" in err and "warning" not in err

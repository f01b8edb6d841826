"""The bench's GPU offload verdict and how every format shows it."""

from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from auditor.bench.offload import Reading, gpu_info, judge, ratio_of
from auditor.bench.results import GpuDeviceRef, GpuInfo
from auditor.inventory.gpu import parse_devices
from auditor.inventory.interface import GpuFacts
from auditor.models import gguf
from auditor.report import junit, markdown, oscal, prometheus
from auditor.report.bench_json import benchmark_from_json, benchmark_to_json
from auditor.report.html import render as render_html
from auditor.report.load import from_dict
from auditor.report.model import to_dict
from auditor.report.validate import ensure_valid
from tests.unit.report_sample import sample_report

DATA = Path(__file__).parent / "data" / "gpu"
RTX = GpuInfo((GpuDeviceRef("NVIDIA GeForce RTX 4090", "550.54.14", 24564),), "12.4", None)
NO_GPU = GpuInfo((), None, "nvidia-smi not found (no NVIDIA driver)")
PS = "GET /api/ps"


def test_partial_ollama_offload_warns_with_the_share() -> None:
    offload = judge("qwen:7b", RTX, Reading(PS, size=8_000, size_vram=5_000))
    assert (offload.state, offload.ratio) == ("partial", 0.625)
    assert offload.warning is not None
    assert "not fully on the GPU: 62.5% on the GPU, 37.5% on the CPU" in offload.warning
    assert "size_vram 5000 of size 8000 bytes, GET /api/ps" in offload.summary


def test_full_offload_is_said_without_a_warning() -> None:
    offload = judge("qwen:7b", RTX, Reading(PS, size=8_000, size_vram=8_000))
    assert (offload.state, offload.ratio, offload.warning) == ("gpu", 1.0, None)
    assert offload.summary.startswith("qwen:7b is 100% on the GPU")


def test_nothing_on_a_gpu_that_is_there_warns() -> None:
    offload = judge("qwen:7b", RTX, Reading(PS, size=8_000, size_vram=0))
    assert offload.state == "cpu"
    assert offload.warning is not None and "0% GPU, 100% CPU" in offload.warning
    assert "RTX 4090" in offload.warning


def test_no_gpu_is_cpu_only_said_plainly() -> None:
    offload = judge("smollm2", NO_GPU, Reading("pid 9 argv", gpu_layers=0, model_layers=31))
    assert (offload.state, offload.ratio, offload.warning) == ("cpu-only", 0.0, None)
    assert offload.summary.startswith("CPU only: no GPU on this machine (nvidia-smi not found")


def test_gpu_layers_asked_without_a_gpu_are_named() -> None:
    offload = judge("m", NO_GPU, Reading("argv", gpu_layers=99, model_layers=31))
    assert offload.state == "cpu-only"
    assert "started with 99 GPU layers, but there is no GPU" in offload.summary


def test_an_engine_reporting_vram_without_nvidia_smi_is_believed() -> None:
    """A GPU nvidia-smi does not see (another vendor's) still counts if the engine uses it."""
    offload = judge("m", NO_GPU, Reading(PS, size=10, size_vram=4))
    assert (offload.state, offload.ratio) == ("partial", 0.4)


@pytest.mark.parametrize(
    ("reading", "share"),
    [
        (Reading("argv", gpu_layers=-1, model_layers=31), 1.0),
        (Reading("argv", gpu_layers=99, model_layers=31), 1.0),
        (Reading("argv", gpu_layers=10, model_layers=40), 0.25),
        (Reading(PS, size=0, size_vram=0), None),  # Ollama's "Unknown"
        (Reading(PS, size=5, size_vram=9), None),
        (Reading(PS), None),
    ],
)
def test_ratio(reading: Reading, share: float | None) -> None:
    assert ratio_of(reading) == share


def test_unreadable_offload_on_a_gpu_machine_is_a_warning_not_a_pass() -> None:
    offload = judge("m", RTX, Reading(PS, error="m is not loaded according to GET /api/ps"))
    assert offload.state == "unknown" and offload.ratio is None
    assert offload.warning is not None and "could not be read" in offload.warning


def test_gpu_info_from_recorded_nvidia_smi() -> None:
    devices = parse_devices((DATA / "nvidia-smi-rtx4090.csv").read_text())
    info = gpu_info(GpuFacts(devices, "12.4", "/usr/bin/nvidia-smi", None))
    assert info.devices and info.devices[0].name.startswith("NVIDIA")


def _gguf(path: Path, blocks: int) -> Path:
    def string(text: str) -> bytes:
        return struct.pack("<Q", len(text)) + text.encode()

    header = b"GGUF" + struct.pack("<IQQ", 3, 0, 2)
    header += string("general.architecture") + struct.pack("<I", 8) + string("llama")
    header += string("llama.block_count") + struct.pack("<II", 4, blocks)
    path.write_bytes(header)
    return path


def test_gguf_block_count_is_read(tmp_path: Path) -> None:
    assert gguf.read_info(_gguf(tmp_path / "m.gguf", 30)).block_count == 30


# ------------------------------------------------------------- every format shows it


def test_section_round_trips_and_validates() -> None:
    report = sample_report()
    ensure_valid(report)
    assert report.benchmark is not None
    data = benchmark_to_json(report.benchmark)
    assert data["offload"]["ratio"] == 0.625 and data["gpu"]["cuda_version"] == "12.4"
    assert benchmark_from_json(json.loads(json.dumps(data))) == report.benchmark
    assert from_dict(to_dict(report)).benchmark == report.benchmark


def test_html_and_markdown_warn_visibly() -> None:
    report = sample_report()
    html = render_html(report)
    assert "Warning — GPU offload:" in html and "62.5% on the GPU, 37.5% on the CPU" in html
    assert "RTX 4090" in html
    text = markdown.render(report)
    assert "> **Warning — GPU offload:**" in text and "62.5% on the GPU" in text


def test_cpu_only_is_said_in_html_and_markdown() -> None:
    report = sample_report()
    assert report.benchmark is not None
    offload = judge(report.benchmark.model, NO_GPU, Reading("argv", gpu_layers=0))
    bench = replace(report.benchmark, gpu=NO_GPU, offload=offload)
    report = replace(report, benchmark=bench)
    ensure_valid(report)
    for text in (render_html(report), markdown.render(report)):
        assert "CPU only: no GPU on this machine" in text
        assert "Warning — GPU offload" not in text


def test_junit_carries_the_warning_without_failing() -> None:
    root = ET.fromstring(junit.render(sample_report()))
    suite = next(s for s in root.iter("testsuite") if s.get("name") == "benchmark")
    case = suite.find("testcase")
    assert case is not None and case.find("failure") is None
    assert "not fully on the GPU" in (case.findtext("system-err") or "")
    assert suite.get("failures") == "0"


def test_prometheus_and_oscal_carry_the_ratio_and_warning() -> None:
    report = sample_report()
    text = prometheus.render(report)
    assert 'offgrid_bench_gpu_offload_ratio{model="SmolLM2-135M-Instruct.Q4_1",' in text
    assert 'state="partial"} 0.625' in text
    assert "offgrid_bench_gpu_offload_warning{" in text and "offgrid_bench_gpu_devices 1" in text
    remarks = json.loads(oscal.render(report))["assessment-results"]["results"][0]["remarks"]
    assert "Benchmark GPU offload: Warning:" in remarks and "62.5% on the GPU" in remarks

"""GPU facts from nvidia-smi (recorded outputs replayed by the stand-in) and each served
model's GPU share in the report, with a warning when a model is not fully on the GPU."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from auditor.inventory import gpu
from auditor.inventory.interface import GpuDevice, GpuFacts, ServedModel, ServedModels
from auditor.report.from_facts import extra_section, gpu_section, served_refs
from auditor.report.load import from_dict
from auditor.report.model import to_dict
from auditor.report.validate import validate
from tests.standins import nvidia_smi_standin
from tests.unit.audit_facts import facts
from tests.unit.report_sample import sample_report

DATA = Path(__file__).with_name("data") / "gpu"


def _on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recorded: str, code: int = 0) -> None:
    tool = tmp_path / "bin" / "nvidia-smi"
    tool.parent.mkdir()
    tool.write_text(nvidia_smi_standin.script(recorded, code))
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tool.parent}:/usr/bin:/bin")


def test_recorded_a100_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _on_path(tmp_path, monkeypatch, (DATA / "nvidia-smi-4x-a100.csv").read_text())
    found = gpu.collect()
    assert found.error is None and len(found.devices) == 4
    assert found.devices[0] == GpuDevice("NVIDIA A100-SXM4-80GB", "580.159.04", 81920)
    assert found.cuda_version is None  # the stand-in answers only the inventory query


def test_no_driver_and_no_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _on_path(tmp_path, monkeypatch, (DATA / "nvidia-smi-no-driver.txt").read_text(), code=9)
    failed = gpu.collect()
    assert failed.devices == () and failed.error and "NVIDIA" in failed.error
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert "not found" in (gpu.collect().error or "")


def test_partial_offload_warns_and_the_report_round_trips() -> None:
    served = ServedModels(
        (
            ServedModel("full:1b", "t", 4096, 99, 0.1, 1000, 1000),
            ServedModel("half:7b", "t", 4096, 99, 0.1, 1000, 400),
        ),
        None,
    )
    refs = served_refs(served)
    assert refs is not None and refs[0].warning is None
    assert refs[1].gpu_share == 0.4 and "40% on the GPU" in (refs[1].warning or "")
    card = GpuFacts(
        (gpu.GpuDevice("NVIDIA GeForce RTX 4090", "580.95.05", 24564),), "12.8", "x", None
    )
    extra = extra_section(facts(served=served, gpu=card), None)
    assert extra.gpu == gpu_section(card)
    report = dataclasses.replace(sample_report(), extra=extra)
    data = to_dict(report)
    assert validate(data) == []
    assert from_dict(data).extra == extra

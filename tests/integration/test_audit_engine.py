"""`offgrid audit` end to end against the real llama.cpp server on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.embedded.llamacpp import RunningEngine
from auditor.report.render import available_formats
from auditor.report.validate import validate

pytestmark = pytest.mark.integration


def _audit(engine: RunningEngine, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auditor", "audit", "--engine-pid", str(engine.pid), *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_audit_of_the_real_engine(llama_engine: RunningEngine, tmp_path: Path) -> None:
    out = tmp_path / "audit.json"
    done = _audit(llama_engine, "--watch", "1", "--output", str(out))
    assert "Traceback" not in done.stderr
    # not run from a systemd unit here, so OG-CFG-01 fails: exit 1, never a crash
    assert done.returncode == 1, done.stderr
    report = json.loads(out.read_text())
    assert validate(report) == []
    controls = {c["id"]: c for c in report["controls"]}
    for cid in ("OG-NET-01", "OG-NET-02", "OG-NET-03"):
        assert controls[cid]["status"] == "pass", controls[cid]
    assert controls["OG-CFG-01"]["status"] == "fail"
    assert controls["OG-CFG-03"]["status"] == "not_applicable"  # an Ollama-only control
    engine = report["engine"]
    assert (engine["kind"], engine["pid"], engine["port"]) == (
        "llamacpp",
        llama_engine.pid,
        llama_engine.port,
    )
    assert engine["version"] == "0.3.36"
    assert controls["OG-VUL-01"]["status"] == "pass"
    assert report["summary"]["total"] == len(controls)


@pytest.mark.parametrize("fmt", sorted(set(available_formats()) & {"html", "markdown", "junit"}))
def test_every_format_renders_to_stdout(llama_engine: RunningEngine, fmt: str) -> None:
    done = _audit(llama_engine, "--format", fmt)
    assert done.returncode == 1, done.stderr
    assert "OG-NET-01" in done.stdout
    assert "offgrid audit" in done.stderr  # the summary table goes to stderr, not into the report


def test_discovered_without_being_told(llama_engine: RunningEngine, tmp_path: Path) -> None:
    out = tmp_path / "audit.json"
    subprocess.run(
        [sys.executable, "-m", "auditor", "audit", "--engine", "llamacpp", "--output", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    engine = json.loads(out.read_text())["engine"]
    assert engine["discovered_by"] == "process"
    # other llama.cpp servers may run on this machine; ours is the audited one or a candidate
    assert llama_engine.pid == engine["pid"] or llama_engine.pid in engine["other_candidates"]


def test_waived_failures_do_not_fail_the_audit(llama_engine: RunningEngine, tmp_path: Path) -> None:
    first = tmp_path / "first.json"
    _audit(llama_engine, "--output", str(first))
    controls = json.loads(first.read_text())["controls"]
    failing = [c["id"] for c in controls if c["status"] == "fail"]
    assert failing, "the hand-started engine fails at least OG-CFG-01"
    waivers = tmp_path / "waivers.toml"
    waivers.write_text("".join(
        f'[{cid}]\njustification = "test engine"\nexpires = 2999-12-31\n' for cid in failing
    ))  # fmt: skip
    second = tmp_path / "second.json"
    done = _audit(llama_engine, "--waivers", str(waivers), "--output", str(second))
    report = json.loads(second.read_text())
    assert report["summary"]["waived"] == len(failing)
    errors = report["summary"]["error"]
    assert done.returncode == (3 if errors else 0), done.stderr

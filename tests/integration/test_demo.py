"""`offgrid demo` end to end: real engine, audit, bench, every report format, engine stopped."""

from __future__ import annotations

import io
import json
from pathlib import Path

import psutil
import pytest

from auditor.cli import main
from auditor.console import Console
from auditor.report.validate import validate

pytestmark = pytest.mark.integration


def _processes_writing_under(directory: Path) -> list[int]:
    """Processes holding a file open below directory: the demo's engine logs there."""
    found = []
    for proc in psutil.process_iter():
        try:
            files = proc.open_files()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if any(Path(f.path).is_relative_to(directory) for f in files):
            found.append(proc.pid)
    return found


def test_demo_writes_every_format_and_stops_its_engine(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    argv = ["demo", "--output-dir", str(tmp_path), "--runs", "1", "--warmup", "0"]
    code = main([*argv, "--concurrency", "1"], Console(stdout=out, stderr=err))
    assert code == 0, err.getvalue()
    paths = [Path(line) for line in out.getvalue().splitlines()]
    suffixes = {p.name.split(".", 1)[1] for p in paths}
    assert suffixes == {"json", "html", "md", "junit.xml", "oscal.json", "prom"}
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    report = json.loads(
        next(p for p in paths if p.name.endswith(".json") and "oscal" not in p.name).read_text()
    )
    assert validate(report) == []
    assert {c["name"] for c in report["benchmark"]["categories"]} >= {"autocomplete"}
    assert report["engine"]["kind"] == "llamacpp"
    assert (tmp_path / "latest").resolve() == paths[0].parent.resolve()
    assert _processes_writing_under(tmp_path) == []


def test_demo_rejects_a_missing_model_file(tmp_path: Path) -> None:
    err = io.StringIO()
    code = main(
        ["demo", "--output-dir", str(tmp_path), "--model", str(tmp_path / "none.gguf")],
        Console(stdout=io.StringIO(), stderr=err),
    )
    assert code == 2
    assert "no such model file" in err.getvalue()

"""`offgrid report render|validate`, write_all and load: files, exit codes, refusals."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from auditor.cli import main
from auditor.console import Console
from auditor.errors import InputError
from auditor.report.load import load_report
from auditor.report.model import to_dict
from auditor.report.render import FILE_SUFFIXES, available_formats, render
from auditor.report.write import write_all, write_report
from tests.unit.report_sample import sample_report


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _no_charts(monkeypatch: pytest.MonkeyPatch) -> None:
    # Charts are matplotlib's slow part and have their own tests; here the files matter.
    monkeypatch.setitem(sys.modules, "auditor.report.charts", None)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return write_report(sample_report(), "json", tmp_path / "audit.json")


def test_write_all_writes_every_format(tmp_path: Path) -> None:
    paths = write_all(sample_report(), tmp_path / "reports" / "ws-07", "audit", available_formats())
    assert [p.name for p in paths] == [f"audit{FILE_SUFFIXES[f]}" for f in available_formats()]
    assert sorted(os.listdir(paths[0].parent)) == sorted(p.name for p in paths)  # no temp files
    assert json.loads(paths[0].read_text()) == json.loads(render(sample_report(), "json"))


def test_json_round_trips_through_load(saved: Path) -> None:
    loaded = load_report(saved)
    assert json.dumps(to_dict(loaded)) == json.dumps(to_dict(sample_report()))


@pytest.mark.parametrize("fmt", ["html", "markdown", "junit", "oscal", "prometheus", "json"])
def test_render_converts_a_saved_report(saved: Path, tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"converted{FILE_SUFFIXES[fmt]}"
    code, _, err = _run(["report", "render", str(saved), "--format", fmt, "--output", str(target)])
    assert code == 0, err
    assert target.read_text() == render(sample_report(), fmt)


def test_render_to_stdout(saved: Path) -> None:
    code, out, _ = _run(["report", "render", str(saved), "-f", "markdown"])
    assert code == 0
    assert out == render(sample_report(), "markdown")


def test_render_refuses_a_symlinked_output(saved: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    link = tmp_path / "report.html"
    link.symlink_to(victim)
    code, _, err = _run(["report", "render", str(saved), "-f", "html", "-o", str(link)])
    assert code == 2
    assert "symlink" in err and "Traceback" not in err
    assert victim.read_text() == "keep"


def test_render_rejects_unknown_format(saved: Path) -> None:
    code, _, err = _run(["report", "render", str(saved), "--format", "pdf"])
    assert code == 2 and "invalid choice" in err


def test_validate_exit_codes(saved: Path, tmp_path: Path) -> None:
    code, out, _ = _run(["report", "validate", str(saved)])
    assert (code, out.strip()) == (0, f"{saved}: valid offgrid report")

    data = json.loads(saved.read_text())
    data["controls"][0]["status"] = "mostly-fine"
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps(data))
    code, out, err = _run(["report", "validate", str(invalid)])
    assert code == 1
    assert "$.controls[0].status" in out and "not a valid offgrid report" in err

    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    for path in (garbage, tmp_path / "missing.json", tmp_path):
        code, _, err = _run(["report", "validate", str(path)])
        assert code == 2, path
        assert err.count("\n") == 1 and "Traceback" not in err


def test_render_of_an_invalid_report_is_input_error(saved: Path, tmp_path: Path) -> None:
    data = json.loads(saved.read_text())
    del data["controls"][0]["evidence"]
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps(data))
    with pytest.raises(InputError, match="not a valid offgrid report"):
        load_report(invalid)
    code, _, err = _run(["report", "render", str(invalid), "-f", "html"])
    assert code == 2 and "evidence" in err


def test_render_of_non_utf8_is_input_error(tmp_path: Path) -> None:
    binary = tmp_path / "report.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    code, _, err = _run(["report", "render", str(binary), "-f", "html"])
    assert code == 2 and "not UTF-8" in err


def test_report_without_action_is_usage_error() -> None:
    code, _, err = _run(["report"])
    assert code == 2 and "offgrid: error:" in err

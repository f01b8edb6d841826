"""`offgrid bench compare`: exit 1 on a regression, naming the category and metric."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

from auditor.cli import main
from auditor.console import Console
from tests.unit.bench_fakes import synthetic_json


def _write(path: Path, section: dict[str, Any]) -> str:
    path.write_text(json.dumps(section))
    return str(path)


def _compare(
    tmp_path: Path, old: dict[str, Any], new: dict[str, Any], *extra: str
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    argv = [
        "bench",
        "compare",
        _write(tmp_path / "old.json", old),
        _write(tmp_path / "new.json", new),
        *extra,
    ]
    return main(argv, Console(stdout=out, stderr=err)), out.getvalue(), err.getvalue()


def test_same_results_do_not_regress(tmp_path: Path) -> None:
    section = synthetic_json()
    code, out, _err = _compare(tmp_path, section, section)
    assert code == 0 and out == ""


def test_slower_ttft_is_a_regression_naming_category_and_metric(tmp_path: Path) -> None:
    old = synthetic_json(ttft_ms=50)
    new = copy.deepcopy(old)
    new["categories"][0]["ttft_ms"]["median"] *= 1.25
    code, out, err = _compare(tmp_path, old, new, "--threshold", "10")
    assert code == 1
    assert "REGRESSION autocomplete ttft_ms.median" in out and "+25.0% worse" in out
    assert "1 metric(s) regressed" in err


def test_lower_decode_rate_is_a_regression_and_a_faster_one_is_not(tmp_path: Path) -> None:
    old = synthetic_json()
    slower, faster = copy.deepcopy(old), copy.deepcopy(old)
    slower["categories"][2]["decode_tps"]["median"] *= 0.8
    faster["categories"][2]["decode_tps"]["median"] *= 1.5
    assert _compare(tmp_path, old, slower)[0] == 1
    assert "refactor decode_tps.median" in _compare(tmp_path, old, slower)[1]
    assert _compare(tmp_path, old, faster)[0] == 0


def test_change_within_the_threshold_passes(tmp_path: Path) -> None:
    old = synthetic_json()
    new = copy.deepcopy(old)
    new["categories"][1]["total_ms"]["median"] *= 1.04
    assert _compare(tmp_path, old, new, "--threshold", "5")[0] == 0
    assert _compare(tmp_path, old, new, "--threshold", "3")[0] == 1


def test_concurrency_throughput_drop_is_a_regression(tmp_path: Path) -> None:
    old = synthetic_json()
    old["concurrency"] = [{"users": 2, "throughput_tps": 100.0}]
    new = copy.deepcopy(old)
    new["concurrency"] = [{"users": 2, "throughput_tps": 70.0}]
    code, out, _err = _compare(tmp_path, old, new)
    assert code == 1 and "concurrency 2 users throughput_tps" in out


def test_different_suite_versions_do_not_compare(tmp_path: Path) -> None:
    old = synthetic_json()
    new = copy.deepcopy(old)
    new["suite"]["version"] = "9.9.9"
    code, _out, err = _compare(tmp_path, old, new)
    assert code == 2 and "suite versions differ" in err


def test_unreadable_results_are_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{")
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["bench", "compare", str(tmp_path / "bad.json"), str(tmp_path / "bad.json")],
        Console(stdout=out, stderr=err),
    )
    assert code == 2 and "cannot read benchmark results" in err.getvalue()

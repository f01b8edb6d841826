"""bench's gateway credential: read only from a private file or the environment, never sent
in clear text off the machine, never echoed; the report's access record round-trips."""

from __future__ import annotations

import copy
import io
import json
import os
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from auditor.cli import main
from auditor.console import Console
from auditor.errors import InputError
from auditor.gateway import credential
from auditor.report.bench_json import benchmark_from_json, benchmark_to_json
from auditor.report.benchmark_view import TEAM_TITLE
from tests.unit.report_sample import benchmark_section
from tests.unit.report_variants import report_data

SECRET = "ogk_0123456789ab_" + "s" * 43
BENCH = ["bench", "--endpoint", "http://127.0.0.1:9", "--api", "ollama", "--model", "m"]


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def _one_line_error(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("offgrid: error:") and "Traceback" not in err


def test_unusable_credential_files_are_refused_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(credential.ENV_VAR, raising=False)
    exposed, lines, empty, huge, fifo = (tmp_path / n for n in ("a", "b", "c", "d", "fifo"))
    exposed.write_text(SECRET)
    exposed.chmod(0o644)
    lines.write_text(f"{SECRET}\nsecond line\n")
    empty.write_text("")
    huge.write_text("x" * 5000)
    for path in (lines, empty, huge):
        path.chmod(0o600)
    os.mkfifo(fifo, 0o600)
    for path in (exposed, lines, empty, huge, fifo, tmp_path / "missing"):
        code, out, err = _run([*BENCH, "--api-key-file", str(path)])
        assert code == 2 and out == "" and _one_line_error(err), (path, err)
        assert SECRET not in err and "second line" not in err


def test_credential_from_the_environment_is_checked_and_never_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(credential.ENV_VAR, "two words")
    code, _, err = _run(BENCH)
    assert code == 2 and _one_line_error(err) and "two words" not in err
    assert credential.from_environment({credential.ENV_VAR: SECRET}) == SECRET
    assert credential.from_environment({}) is None


def test_a_credential_is_never_sent_in_clear_text_off_the_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(credential.ENV_VAR, SECRET)
    remote = ["bench", "--endpoint", "http://192.0.2.1:11434", "--api", "ollama", "--model", "m"]
    code, _, err = _run([*remote, "--allow-remote"])
    assert code == 2 and "clear text" in err and _one_line_error(err)
    assert SECRET not in err


def test_a_secret_file_with_one_trailing_newline_is_read(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(SECRET + "\n")
    path.chmod(0o600)
    assert credential.read_file(path) == SECRET
    with pytest.raises(InputError):
        credential.bearer_value(b"\xff\xfe", "x")


def test_the_access_record_round_trips_and_matches_the_schema() -> None:
    section = copy.deepcopy(benchmark_section())
    section["access"] = {
        "via": "authenticated gateway",
        "scheme": "bearer",
        "credential_source": "environment",
        "concurrency_view": "team",
    }
    text = resources.files("auditor.data").joinpath("benchmark.schema.json").read_text("utf-8")
    validator = jsonschema.Draft202012Validator(json.loads(text))
    validator.validate(section)
    record = benchmark_from_json(section)
    assert record.access is not None and record.access.concurrency_view == "team"
    assert benchmark_to_json(record)["access"] == section["access"]
    section["access"]["api_key"] = SECRET  # nothing else may ever be recorded there
    assert not validator.is_valid(section)
    with pytest.raises(InputError):
        benchmark_from_json(section)


@pytest.mark.parametrize("fmt", ["html", "markdown"])
def test_the_sweep_is_the_team_view_only_through_an_authenticated_gateway(
    tmp_path: Path, fmt: str
) -> None:
    data = report_data()
    data["benchmark"] = copy.deepcopy(benchmark_section())
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(data))
    data["benchmark"]["access"] = {
        "via": "authenticated gateway",
        "scheme": "bearer",
        "credential_source": "file",
        "concurrency_view": "team",
    }
    team = tmp_path / "team.json"
    team.write_text(json.dumps(data))
    rendered = {}
    for path in (plain, team):
        out = tmp_path / f"{path.stem}.{fmt}"
        code, _, err = _run(["report", "render", str(path), "-f", fmt, "-o", str(out)])
        assert code == 0, err
        rendered[path.stem] = out.read_text()
    assert TEAM_TITLE in rendered["team"] and "authenticated gateway" in rendered["team"]
    assert TEAM_TITLE not in rendered["plain"] and "Concurrency" in rendered["plain"]

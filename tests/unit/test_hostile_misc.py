"""Hostile users and hostile servers: IDE settings that point elsewhere, a fleet directory the
reader cannot list, bench servers that send malformed shapes and NaN timings, flags that are
not numbers, and a crash that must not look like a verdict."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditor.checks import net, tel
from auditor.cli import main
from auditor.commands import report as report_command
from auditor.console import Console
from auditor.exitcodes import ExitCode
from auditor.inventory import ide
from auditor.inventory.interface import AuditOptions, EgressFacts, IdeFacts
from auditor.verdicts import Status
from tests.unit.audit_facts import ENGINE_PID, engine, facts
from tests.unit.bench_fakes import Script, serving
from tests.unit.report_variants import all_pass

REPO = Path(__file__).resolve().parents[2]


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def _one_line_error(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("offgrid: error:") and "Traceback" not in err


# ---- IDE settings the audit reads as root ------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / ".config" / "Code" / "User").mkdir(parents=True)
    (home / ".continue").mkdir()
    return home


def _errors(home: Path, uid: int | None = None) -> dict[str, str | None]:
    return {Path(f.path).name: f.error for f in ide.user_files("dev", home, uid)}


def test_settings_symlinks_are_never_followed(home: Path, tmp_path: Path) -> None:
    secret = tmp_path / "shadow"
    secret.write_text('{"telemetry.telemetryLevel": "off"}')
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # what a symlink to /dev/zero or a FIFO would block or flood on
    (home / ".config/Code/User/settings.json").symlink_to(secret)
    (home / ".continue/config.json").symlink_to(fifo)
    errors = _errors(home)
    assert "symlink" in str(errors["settings.json"]) and "symlink" in str(errors["config.json"])


def test_a_symlinked_directory_on_the_way_is_refused(home: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "settings.json").write_text("{}")
    shutil.rmtree(home / ".config/Code/User")
    (home / ".config/Code/User").symlink_to(elsewhere)
    assert "symlink" in str(_errors(home)["settings.json"])


def test_deep_huge_and_foreign_settings_are_errors_not_crashes(home: Path) -> None:
    (home / ".continue/config.json").write_text("[" * 100_000 + "]" * 100_000)
    with (home / ".config/Code/User/settings.json").open("wb") as handle:
        handle.truncate(ide.MAX_SETTINGS_BYTES + 1)  # sparse: st_size says little, bytes say more
    errors = _errors(home)
    assert "nested deeper" in str(errors["config.json"])
    assert "larger than" in str(errors["settings.json"])
    (home / ".continue/config.json").write_text("{}")
    errors = _errors(home, uid=os.geteuid() + 1)  # a file the user does not own: a hard link
    assert "owned by uid" in str(errors["config.json"])


def test_bad_settings_make_the_users_controls_error(home: Path) -> None:
    (home / ".continue/config.json").write_text('{"a": ' + "9" * 5000 + "}")
    files = tuple(ide.user_files("dev", home))
    options = AuditOptions(ide_users=("dev",))
    results = [
        check(facts(ide=IdeFacts(files, ()), options=options))
        for check in (tel.continue_telemetry,)
    ]
    assert [r.status for r in results] == [Status.ERROR]


# ---- lack of privilege is error ----------------------------------------------------------


def test_unreadable_nft_ruleset_without_systemd_egress_is_error_not_fail() -> None:
    unit = dataclasses.replace(engine().unit, properties={"MainPID": str(ENGINE_PID)})  # type: ignore[arg-type]
    egress = EgressFacts(nft_rules=None, nft_error="Operation not permitted (not root)", probe=None)
    result = net.egress_enforcement_present(facts(engine=engine(unit=unit), egress=egress))
    assert result.status is Status.ERROR and "could not be read" in result.summary


# ---- fleet never drops a host ------------------------------------------------------------


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory another user can traverse (tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="offgrid-fleet-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


@pytest.mark.root
def test_fleet_lists_a_host_directory_it_cannot_read(shared_tmp: Path) -> None:
    for host in ("ws-01", "ws-02"):
        (shared_tmp / host).mkdir()
        (shared_tmp / host / "r.json").write_text(json.dumps(all_pass(host)))
        (shared_tmp / host / "r.json").chmod(0o644)
        (shared_tmp / host).chmod(0o755)
    (shared_tmp / "ws-02").chmod(0o700)  # unreadable for the user who summarizes
    argv = ["report", "fleet", str(shared_tmp), "-f", "json", "--max-age", "1e6"]
    done = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-m", "tests.unit.cli_driver", json.dumps([argv])],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[0])
    assert result["rc"] == 1  # one host unreadable: never "all pass"


def test_fleet_crashed_auditor_is_a_row_and_a_finding(tmp_path: Path) -> None:
    host = tmp_path / "ws-01"
    host.mkdir()
    (host / "r.json").write_text(json.dumps(all_pass("ws-01")))
    code, out, _ = _run(["report", "fleet", str(tmp_path), "-f", "json", "--max-age", "1e6"])
    assert code == 0 and json.loads(out)["hosts"][0]["auditor_run"] is None
    (host / "offgrid-run.failed").write_text("exit 70: offgrid: error: internal error\n")
    code, out, _ = _run(["report", "fleet", str(tmp_path), "-f", "json", "--max-age", "1e6"])
    row = json.loads(out)["hosts"][0]
    assert code == 1 and row["verdict"] == "crashed" and "exit 70" in row["auditor_run"]
    code, out, _ = _run(["report", "fleet", str(tmp_path), "-f", "markdown", "--max-age", "1e6"])
    assert "AUDITOR FAILED" in out and "exit 70" in out


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "1e300"])
def test_numeric_flags_are_validated(tmp_path: Path, value: str) -> None:
    results = tmp_path / "r.json"
    results.write_text(json.dumps({"suite": {"version": 1}, "categories": []}))
    for argv in (
        ["report", "fleet", str(tmp_path), "--max-age", value],
        ["bench", "compare", str(results), str(results), "--threshold", value],
        ["bench", "--endpoint", "http://127.0.0.1:9", "--api", "ollama", "--model", "m",
         "--timeout", value],
        ["bench", "--endpoint", "http://127.0.0.1:9", "--api", "ollama", "--model", "m",
         "--temperature", value],
    ):  # fmt: skip
        if (value in ("0", "-1") and "--threshold" in argv) or (
            value == "0" and "--temperature" in argv
        ):
            continue  # a zero threshold or temperature is meaningful
        code, _out, err = _run(argv)
        assert code == 2 and _one_line_error(err), (argv, err)


@pytest.mark.parametrize(
    "argv",
    [
        ["--endpoint", "http://[::1:18101"],
        ["--endpoint", "http://127.0.0.1:99999"],
        ["--endpoint", "ftp://127.0.0.1"],
        ["--concurrency-category", "poetry", "--concurrency", "2"],
        ["--output", "/nonexistent-dir/x.json"],
        ["--format", "docx"],
    ],
)
def test_run_flags_are_refused_before_any_request(argv: list[str]) -> None:
    base = ["bench", "--endpoint", "http://127.0.0.1:9", "--api", "ollama", "--model", "m"]
    code, _out, err = _run([*base, *argv])
    assert code == 2 and _one_line_error(err), err


# ---- hostile bench servers ---------------------------------------------------------------

SSE = [
    b'data: {"choices":5}\n\n',
    b'data: {"choices":[{"delta":7}]}\n\n',
    b'data: {"choices":[{"delta":{"content":"x"}}],"timings":{"predicted_ms":NaN}}\n\n',
    b'data: {"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}],'
    b'"usage":{"completion_tokens":1e400}}\n\n',
    b"data: " + b"[" * 5000 + b"\n\n",
    b"data: \xff\xfe\n\n",
]
NDJSON = [
    b'{"response":"x","done":true,"eval_count":3,"eval_duration":NaN}\n',
    b'{"response":"x","done":true,"eval_duration":Infinity}\n',
    b'{"message":5,"done":false}\n{"done":true,"eval_count":' + b"9" * 5000 + b"}\n",
    b'[1,2,3]\n',
    b'{"response":{"a":1},"done":true}\n',
]  # fmt: skip


def _bench(url: str, api: str, tmp_path: Path) -> tuple[int, str, str]:
    output = tmp_path / "out.json"
    argv = ["bench", "--endpoint", url, "--api", api, "--model", "m", "--runs", "1",
            "--warmup", "0", "--categories", "autocomplete", "--timeout", "10",
            "--output", str(output)]  # fmt: skip
    code, out, err = _run(argv)
    if output.exists():  # whatever was written is strict JSON: no NaN, no Infinity
        json.loads(output.read_text(), parse_constant=pytest.fail)
    return code, out, err


@pytest.mark.parametrize("body", SSE)
def test_hostile_sse_server_is_a_failed_run_not_a_crash(body: bytes, tmp_path: Path) -> None:
    with serving(Script([(0.0, body), (0.0, b"data: [DONE]\n\n")])) as url:
        code, _out, err = _bench(url, "openai", tmp_path)
    assert code in (ExitCode.OK, ExitCode.INCOMPLETE) and "Traceback" not in err, err


@pytest.mark.parametrize("body", NDJSON)
def test_hostile_ndjson_server_is_a_failed_run_not_a_crash(body: bytes, tmp_path: Path) -> None:
    script = Script([(0.0, body)], content_type="application/x-ndjson")
    with serving(script) as url:
        code, _out, err = _bench(url, "ollama", tmp_path)
    assert code in (ExitCode.OK, ExitCode.INCOMPLETE) and "Traceback" not in err, err
    assert code == ExitCode.INCOMPLETE or b"NaN" not in body


# ---- a crash is not a verdict ------------------------------------------------------------


def test_an_unhandled_error_exits_70_with_one_line_and_the_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(args: object, console: Console) -> int:
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setattr(report_command, "_validate", broken)
    code, _out, err = _run(["report", "validate", str(tmp_path / "r.json")])
    first, *rest = err.splitlines()
    assert code == ExitCode.CRASH == 70
    assert first.startswith("offgrid: error: internal error (exit 70, no verdict): ")
    assert first.endswith("RuntimeError: a bug over two lines")
    assert rest[0].startswith("Traceback") and "RuntimeError: a bug" in "\n".join(rest)


@pytest.mark.root
def test_settings_are_read_with_the_users_privileges_not_roots(shared_tmp: Path) -> None:
    home = shared_tmp / "home"
    (home / ".config/Code/User").mkdir(parents=True)
    (home / ".continue").mkdir()
    settings = home / ".config/Code/User/settings.json"
    settings.write_text('{"telemetry.telemetryLevel": "off"}')
    unreadable = home / ".continue/config.json"
    unreadable.write_text("{}")
    unreadable.chmod(0o000)  # root could read it; the user cannot, so the audit must not
    for path in (home, *home.rglob("*")):
        os.chown(path, 65534, 65534, follow_symlinks=False)
    entry = pwd.struct_passwd(("nobody", "x", 65534, 65534, "", str(home), "/bin/sh"))
    files = {Path(f.path).name: f for f in ide._as_user(entry)}
    assert files["settings.json"].settings == {"telemetry.telemetryLevel": "off"}
    assert "permission denied" in str(files["config.json"].error)


def test_the_nightly_unit_and_the_playbook_treat_a_crash_as_a_failure() -> None:
    unit = (REPO / "roles/offgrid_auditor/templates/offgrid-audit.service.j2").read_text()
    success = [line for line in unit.splitlines() if line.startswith("SuccessExitStatus=")]
    assert success == ["SuccessExitStatus=1 3"]  # 70 (and 2) leave the unit failed
    play = (REPO / "playbooks/audit.yml").read_text()
    assert "offgrid-run.failed" in play  # the fleet summary's "Auditor run" column
    assert "when: offgrid_audit_run.rc not in [0, 1, 3]" in play

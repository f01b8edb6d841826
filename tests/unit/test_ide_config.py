"""`offgrid ide-config`: what it writes passes OG-TEL as the real IDE collector reads it, the
models follow the measured crossover (else the lock), the credential is 0600 and never
printed, and nothing that offgrid did not write is ever overwritten."""

from __future__ import annotations

import copy
import io
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from auditor.checks import tel
from auditor.cli import main
from auditor.console import Console
from auditor.inventory import ide
from auditor.inventory.interface import AuditOptions, IdeFacts
from auditor.models import lockfile
from auditor.models.lockfile import GGUFPin, Lock
from auditor.verdicts import Status
from tests.unit.audit_facts import facts
from tests.unit.report_sample import benchmark_section

TOKEN = "ogk_0123456789ab_" + "A" * 43
URL = "https://gw.example:8443"


def _run(argv: list[str], stdin: bytes | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    if stdin is None:
        code = main(argv, Console(stdout=out, stderr=err))
    else:
        saved = sys.stdin
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
        try:
            code = main(argv, Console(stdout=out, stderr=err))
        finally:
            sys.stdin = saved
    return code, out.getvalue(), err.getvalue()


def _one_line_error(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("offgrid: error:") and "Traceback" not in err


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "alice.token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def lock_file(tmp_path: Path) -> Path:
    pins = (
        GGUFPin("big-coder", "models/gguf/big.gguf", "b" * 64, 9_000_000),
        GGUFPin("small-coder", "models/gguf/small.gguf", "a" * 64, 1_000_000),
    )
    path = tmp_path / "offgrid.lock.json"
    lockfile.save(Lock(gguf=pins), path)
    return path


def _base(out: Path, token_file: Path, *extra: str) -> list[str]:
    return [
        "ide-config", "--user", "alice", "--url", URL, "--api", "openai",
        "--token-file", str(token_file), "--out", str(out), *extra,
    ]  # fmt: skip


def _tel(home: Path) -> tuple[Status, Status, list[ide.IdeSettingsFile]]:
    """OG-TEL-01 and -02 on what the real collector reads from `home`."""
    files = ide.user_files("alice", home, os.geteuid())
    audited = facts(options=AuditOptions(ide_users=("alice",)), ide=IdeFacts(tuple(files), ()))
    return tel.vscode_telemetry(audited).status, tel.continue_telemetry(audited).status, files


def test_what_offgrid_hands_out_passes_og_tel_as_the_collector_reads_it(
    tmp_path: Path, token_file: Path, lock_file: Path
) -> None:
    out = tmp_path / "alice"
    code, stdout, err = _run(_base(out, token_file, "--lock", str(lock_file)))
    assert code == 0, err
    assert TOKEN not in stdout and TOKEN not in err
    assert "models from the lock" in stdout and "autocomplete: small-coder" in stdout
    assert "chat: big-coder" in stdout
    vscode, cont, files = _tel(out)
    assert (vscode, cont) == (Status.PASS, Status.PASS), files
    assert {f.kind for f in files if f.exists} == {"vscode", "continue"}
    config = out / ".continue" / "config.yaml"
    assert stat.S_IMODE(os.lstat(config).st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(out / ".continue").st_mode) == 0o700
    text = config.read_text()
    assert text.count(f'apiKey: "{TOKEN}"') == 2 and f'apiBase: "{URL}/v1/"' in text
    parsed = yaml.safe_load(text)  # Continue's config.yaml shape, read by a YAML parser
    assert (parsed["schema"], parsed["allowAnonymousTelemetry"]) == ("v1", False)
    roles = {m["model"]: m["roles"] for m in parsed["models"]}
    assert roles == {"big-coder": ["chat", "edit", "apply"], "small-coder": ["autocomplete"]}
    assert {(m["provider"], m["apiKey"]) for m in parsed["models"]} == {("openai", TOKEN)}
    settings = ide.parse_jsonc((out / ".config/Code/User/settings.json").read_text())
    assert settings == {"telemetry.telemetryLevel": "off", "continue.telemetryEnabled": False}
    # a re-run replaces offgrid's own files
    assert _run(_base(out, token_file, "--lock", str(lock_file)))[0] == 0


def test_og_tel_fails_when_what_was_handed_out_is_edited_back_on(
    tmp_path: Path, token_file: Path, lock_file: Path
) -> None:
    out = tmp_path / "alice"
    assert _run(_base(out, token_file, "--lock", str(lock_file)))[0] == 0
    config = out / ".continue" / "config.yaml"
    config.write_text(config.read_text().replace("Telemetry: false", "Telemetry: true"))
    settings = out / ".config/Code/User/settings.json"
    settings.write_text(settings.read_text().replace('"off"', '"all"'))
    assert _tel(out)[:2] == (Status.FAIL, Status.FAIL)


def _measured(model: str, verdicts: dict[str, tuple[str, float]]) -> dict[str, Any]:
    section = copy.deepcopy(benchmark_section())
    section["model"] = model
    section["crossover"]["model"] = model
    section["crossover"]["decision_matrix"] = [
        {
            "use_case": name,
            "category": name,
            "recommendation": verdict,
            "rationale": "measured",
            "figures": {"local_total_ms": [total / 2, total]},
        }
        for name, (verdict, total) in verdicts.items()
    ]
    return section


def test_models_follow_the_measured_crossover(
    tmp_path: Path, token_file: Path, lock_file: Path
) -> None:
    fast = _measured(
        "small-coder",
        {"autocomplete": ("Local", 300.0), "function": ("Cloud", 9000.0), "explain": ("Cloud", 1)},
    )
    strong = _measured(
        "big-coder",
        {
            "autocomplete": ("Hybrid", 900.0),
            "function": ("Local", 7000.0),
            "refactor": ("Local", 1),
        },
    )
    reports = []
    for name, section in (("fast", fast), ("strong", strong)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"benchmark": section}))
        reports += ["--bench-report", str(path)]
    out = tmp_path / "alice"
    code, stdout, err = _run(_base(out, token_file, "--lock", str(lock_file), *reports))
    assert code == 0, err
    assert "models from the measured crossover" in stdout
    assert "autocomplete: small-coder" in stdout and "chat: big-coder" in stdout
    text = (out / ".continue" / "config.yaml").read_text()
    assert text.index('model: "big-coder"') < text.index("- chat") < text.index("small-coder")
    # only one model measured, the cloud faster for chat: still local, and said so
    code, stdout, _ = _run(_base(tmp_path / "b", token_file, *reports[:2]))
    assert code == 0 and "chat: small-coder" in stdout and "only local models" in stdout
    # a measured model the lock does not pin, and results without a crossover
    unpinned = tmp_path / "unpinned.json"
    unpinned.write_text(json.dumps(_measured("other", {"autocomplete": ("Local", 1.0)})))
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({**fast, "crossover": None}))
    for report in (unpinned, bare):
        argv = _base(tmp_path / "c", token_file, "--lock", str(lock_file))
        code, _, err = _run([*argv, "--bench-report", str(report)])
        assert code == 2 and _one_line_error(err), err


def test_token_from_stdin_and_a_store_check(tmp_path: Path, lock_file: Path) -> None:
    store = tmp_path / "tokens.json"
    code, token, _ = _run(["gateway", "token", "issue", "--store", str(store), "--user", "alice"])
    assert code == 0
    argv = [
        "ide-config", "--user", "alice", "--url", "http://127.0.0.1:11434", "--token-stdin",
        "--out", str(tmp_path / "a"), "--lock", str(lock_file), "--api", "openai",
        "--store", str(store),
    ]  # fmt: skip
    code, stdout, err = _run(argv, stdin=token.encode())
    assert code == 0 and token.strip() not in stdout + err, err
    bob = [a if a != "alice" else "bob" for a in argv]
    code, _, err = _run(bob, stdin=token.encode())
    assert code == 2 and "not one issued to bob" in err
    token_id = token.split("_")[1]
    assert _run(["gateway", "token", "revoke", "--store", str(store), "--id", token_id])[0] == 0
    code, _, err = _run(argv, stdin=token.encode())
    assert code == 2 and "revoked" in err and _one_line_error(err)


def test_never_overwrites_what_offgrid_did_not_write(
    tmp_path: Path, token_file: Path, lock_file: Path
) -> None:
    lock = ["--lock", str(lock_file)]
    own = tmp_path / "own"
    (own / ".continue").mkdir(parents=True)
    (own / ".continue" / "config.yaml").write_text("name: mine\n")
    linked = tmp_path / "linked"
    (linked / ".config").mkdir(parents=True)
    (linked / ".config" / "Code").symlink_to(tmp_path)
    fifo = tmp_path / "fifo"
    (fifo / ".continue").mkdir(parents=True)
    os.mkfifo(fifo / ".continue" / "config.yaml")
    exposed = tmp_path / "exposed.token"
    exposed.write_text(TOKEN)
    exposed.chmod(0o644)
    bad_token = tmp_path / "bad.token"
    bad_token.write_text("hunter2")
    bad_token.chmod(0o600)
    cases = [
        _base(own, token_file, *lock),
        _base(linked, token_file, *lock),
        _base(fifo, token_file, *lock),
        _base(tmp_path / "x", exposed, *lock),
        _base(tmp_path / "x", bad_token, *lock),
        _base(tmp_path / "x", token_file),  # neither lock nor results
        _base(tmp_path / "x", token_file, *lock, "--user", "Bad User"),
        [*_base(tmp_path / "x", token_file, *lock)[:4], "http://gw.example:11434",
         *_base(tmp_path / "x", token_file, *lock)[5:]],  # clear text over the network
        _base(tmp_path / "no" / "parent", token_file, *lock),
    ]  # fmt: skip
    for argv in cases:
        code, stdout, err = _run(argv)
        assert code == 2 and _one_line_error(err) and stdout == "", (argv, err)
        assert TOKEN not in err and "hunter2" not in err
    assert (own / ".continue" / "config.yaml").read_text() == "name: mine\n"
    assert not (own / ".config").exists()  # a refusal writes neither file
    assert not (linked / ".continue").exists()
    assert list(tmp_path.glob("User")) == [] and stat.S_ISFIFO(
        os.lstat(fifo / ".continue" / "config.yaml").st_mode
    )

"""`offgrid report history`: the hash chain, every kind of tampering, concurrency, SSH
signatures made and checked by the real ssh-keygen, and `diff`."""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from auditor.cli import main
from auditor.commands import audit as audit_command
from auditor.console import Console
from auditor.errors import InputError
from auditor.report import history, sshsig
from auditor.report.history import CHAIN_FILE, Entry, entry_hash, entry_hmac
from auditor.verdicts import Status
from tests.unit.report_sample import benchmark_section, sample_report
from tests.unit.report_variants import report_data

REPO = Path(__file__).resolve().parents[2]


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    """A history of three reports from one host."""
    directory = tmp_path / "history"
    for minute in range(3):
        history.append(directory, report_data(finished_at=f"2026-11-24T02:0{minute}:00+00:00"))
    return directory


def _problems(directory: Path, **kwargs: Any) -> list[str]:
    return [p.describe() for p in history.verify(directory, **kwargs).problems]


def _lines(directory: Path) -> list[bytes]:
    return (directory / CHAIN_FILE).read_bytes().splitlines(keepends=True)


def _write_lines(directory: Path, lines: list[bytes]) -> None:
    (directory / CHAIN_FILE).write_bytes(b"".join(lines))


def test_append_and_verify_round_trip(chain: Path) -> None:
    result = history.verify(chain)
    assert result.problems == () and result.notes == ()
    assert [e.seq for e in result.entries] == [1, 2, 3]
    first, second = result.entries[0], result.entries[1]
    assert first.prev == "0" * 64 and second.prev == first.entry_hash
    stored = (chain / "reports" / first.report).read_bytes()
    # canonical: sorted keys, no whitespace, and the recorded digest is of exactly these bytes
    assert (
        stored
        == json.dumps(
            json.loads(stored), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    )
    assert history.sha256_hex(stored) == first.report_sha256
    assert (chain / "history.key").stat().st_mode & 0o777 == 0o600
    code, out, _ = _run(["report", "history", "verify", "--dir", str(chain)])
    assert code == 0 and result.entries[-1].entry_hash in out


def test_edited_report_byte_is_named(chain: Path) -> None:
    entry = history.read_entries(chain)[1]
    path = chain / "reports" / entry.report
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    problems = _problems(chain)
    assert len(problems) == 1 and problems[0].startswith("entry 2: report")
    assert "modified" in problems[0]
    code, out, _ = _run(["report", "history", "verify", "--dir", str(chain)])
    assert code == 1 and "TAMPERED entry 2" in out


def test_deleted_report_file_is_named(chain: Path) -> None:
    (chain / "reports" / history.read_entries(chain)[0].report).unlink()
    assert _problems(chain) == [
        f"entry 1: report {history.read_entries(chain)[0].report} is missing"
    ]


def test_edited_entry_is_named(chain: Path) -> None:
    lines = _lines(chain)
    raw = json.loads(lines[1])
    raw["finished_at"] = "2026-11-24T09:00:00+00:00"  # backdate, keep the old hash
    lines[1] = json.dumps(raw).encode() + b"\n"
    _write_lines(chain, lines)
    assert _problems(chain) == ["entry 2: entry was edited: its hash does not match its fields"]


def test_edited_entry_with_recomputed_hash_fails_the_hmac_and_the_next_link(chain: Path) -> None:
    lines = _lines(chain)
    raw = json.loads(lines[1])
    raw["host"] = "someone-else"
    raw["entry_hash"] = entry_hash(raw)
    lines[1] = json.dumps(raw).encode() + b"\n"
    _write_lines(chain, lines)
    problems = _problems(chain)
    assert "entry 2: HMAC does not verify: entry forged or edited" in problems
    assert "entry 3: chain broken: prev does not match the entry before it" in problems


def test_deleted_entry_is_named(chain: Path) -> None:
    lines = _lines(chain)
    deleted = Entry(**{k: v for k, v in json.loads(lines[1]).items() if k != "v"})
    _write_lines(chain, [lines[0], lines[2]])
    problems = _problems(chain)
    assert problems[0] == (
        "entry 3: found where entry 2 belongs: entries were deleted, inserted or reordered"
    )
    assert "entry 3: chain broken: prev does not match the entry before it" in problems
    assert f"report {deleted.report} is not in the chain (its entry was removed)" in problems


def test_reordered_entries_are_named(chain: Path) -> None:
    lines = _lines(chain)
    _write_lines(chain, [lines[0], lines[2], lines[1]])
    problems = _problems(chain)
    assert problems[0].startswith("entry 3: found where entry 2 belongs")
    assert any(p.startswith("entry 2: found where entry 3 belongs") for p in problems)


def test_inserted_duplicate_entry_is_named(chain: Path) -> None:
    lines = _lines(chain)
    _write_lines(chain, [lines[0], lines[0], *lines[1:]])
    assert _problems(chain)[0].startswith("entry 1: found where entry 2 belongs")


def test_entry_forged_without_the_key_is_named(chain: Path) -> None:
    head = history.read_entries(chain)[-1]
    data = json.dumps(report_data(host="forged"), sort_keys=True, separators=(",", ":")).encode()
    digest = history.sha256_hex(data)
    fields: dict[str, Any] = {
        "v": 1, "seq": 4, "timestamp": "2026-11-24T03:00:00Z", "host": "forged",
        "finished_at": "2026-11-24T03:00:00+00:00", "report": f"000004-{digest[:16]}.json",
        "report_sha256": digest, "prev": head.entry_hash,
    }  # fmt: skip
    own = entry_hash(fields)
    fields.pop("v")
    forged = Entry(**fields, entry_hash=own, hmac=entry_hmac(os.urandom(32), own))
    (chain / "reports" / forged.report).write_bytes(data)
    with (chain / CHAIN_FILE).open("ab") as handle:
        handle.write(forged.to_line())
    assert _problems(chain) == ["entry 4: HMAC does not verify: entry forged or edited"]
    # without the key, the forgery is consistent: the verifier says what it could not check
    (chain / "history.key").chmod(0o644)
    result = history.verify(chain)
    assert result.problems == ()
    assert result.notes and "HMACs not checked" in result.notes[0]


def test_truncated_tail_needs_an_anchor(chain: Path) -> None:
    head = history.read_entries(chain)[-1]
    _write_lines(chain, _lines(chain)[:-1])
    (chain / "reports" / head.report).unlink()
    assert _problems(chain) == []  # a shorter chain is consistent: say so, do not pretend
    problems = _problems(chain, expect_head=head.entry_hash)
    assert problems == [f"anchored head {head.entry_hash[:16]}… is not in the chain (truncated?)"]
    code, _, _ = _run(
        ["report", "history", "verify", "--dir", str(chain), "--expect-head", head.entry_hash]
    )
    assert code == 1


def test_damaged_last_line_is_reported_and_blocks_appending(chain: Path) -> None:
    lines = _lines(chain)
    _write_lines(chain, [*lines[:-1], lines[-1][:40]])
    assert _problems(chain)[0].startswith(f"{CHAIN_FILE} line 3: incomplete line")
    with pytest.raises(InputError, match="last line is damaged"):
        history.append(chain, report_data())


def test_exposed_key_is_refused_for_appending(chain: Path) -> None:
    (chain / "history.key").chmod(0o640)
    with pytest.raises(InputError, match="readable or owned by someone else"):
        history.append(chain, report_data())


def test_invalid_report_is_refused(tmp_path: Path) -> None:
    data = report_data()
    data["summary"]["pass"] += 1
    with pytest.raises(InputError, match="not a valid offgrid report"):
        history.append(tmp_path / "h", data)
    assert not (tmp_path / "h" / CHAIN_FILE).exists()


def test_cli_exit_codes_and_list(tmp_path: Path, chain: Path) -> None:
    saved = tmp_path / "r.json"
    saved.write_text(json.dumps(report_data(host="ws-99")))
    code, out, _ = _run(["report", "history", "append", str(saved), "--dir", str(chain)])
    assert code == 0 and out.startswith("appended entry 4")
    code, out, _ = _run(["report", "history", "list", "--dir", str(chain)])
    assert code == 0 and len(out.splitlines()) == 4 and "ws-99" in out.splitlines()[-1]
    code, out, _ = _run(["report", "history", "list", "--dir", str(chain), "--format", "json"])
    assert [e["seq"] for e in json.loads(out)] == [1, 2, 3, 4]
    code, _, err = _run(["report", "history", "verify", "--dir", str(tmp_path / "nope")])
    assert code == 2 and "no such history directory" in err
    code, _, err = _run(["report", "history", "append", str(tmp_path / "x.json")])
    assert code == 2 and "no such file" in err


_APPENDER = """
import sys
from pathlib import Path
from auditor.report import history
from tests.unit.report_variants import report_data
for i in range(int(sys.argv[2])):
    history.append(Path(sys.argv[1]), report_data(host=sys.argv[3]))
"""


def test_concurrent_appends_from_two_processes_keep_the_chain(tmp_path: Path) -> None:
    directory = tmp_path / "history"
    procs = [
        subprocess.Popen([sys.executable, "-c", _APPENDER, str(directory), "13", host], cwd=REPO)
        for host in ("a", "b")
    ]
    try:
        codes = [p.wait(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert codes == [0, 0]
    result = history.verify(directory)
    assert result.problems == ()
    assert [e.seq for e in result.entries] == list(range(1, 27))
    assert [e.host for e in result.entries].count("a") == 13


# ---- SSH signatures (the real ssh-keygen) -----------------------------------------------


@pytest.fixture
def ssh_keys(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen (openssh-client) is not installed")
    key = tmp_path / "signer"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "x", "-f", str(key)], check=True
    )
    public = key.with_suffix(".pub").read_text().split()
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"auditor@offgrid {public[0]} {public[1]}\n")
    return key, allowed


def test_ssh_signed_head_verifies_and_detects_tampering(
    chain: Path, ssh_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key, allowed = ssh_keys
    saved = tmp_path / "r.json"
    saved.write_text(json.dumps(report_data()))
    argv = ["report", "history", "append", str(saved), "--dir", str(chain), "--ssh-key", str(key)]
    assert _run(argv)[0] == 0
    verify = ["report", "history", "verify", "--dir", str(chain), "--allowed-signers", str(allowed)]
    code, _, err = _run(verify)
    assert code == 0 and "head (entry 4) signed by auditor@offgrid" in err

    # a signature by a key not in allowed_signers does not count
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    stranger = other.with_suffix(".pub").read_text().split()
    strangers = tmp_path / "strangers"
    strangers.write_text(f"x@y {stranger[0]} {stranger[1]}\n")
    code, out, _ = _run([*verify[:-1], str(strangers)])
    assert code == 1 and "TAMPERED entry 4: signature 000004.sig does not verify" in out

    # an entry appended without the SSH key leaves the head unsigned
    assert _run(argv[:-2])[0] == 0
    code, out, _ = _run(verify)
    assert code == 1 and "TAMPERED entry 5: the head is not signed" in out


def test_ssh_signature_beyond_the_end_reveals_truncation(
    chain: Path, ssh_keys: tuple[Path, Path]
) -> None:
    key, _ = ssh_keys
    head = history.read_entries(chain)[-1]
    sshsig.sign_head(chain, head, key)
    _write_lines(chain, _lines(chain)[:-1])
    (chain / "reports" / head.report).unlink()
    problems = _problems(chain)
    assert problems == ["signature 000003.sig is for entry 3, beyond the chain's end"]


def test_ssh_signature_of_an_edited_entry_fails(chain: Path, ssh_keys: tuple[Path, Path]) -> None:
    key, allowed = ssh_keys
    head = history.read_entries(chain)[-1]
    path = sshsig.sign_head(chain, head, key)
    assert sshsig.verify_signature(head, path, allowed) == "auditor@offgrid"
    other = Entry(**{**head.__dict__, "entry_hash": "f" * 64})
    assert sshsig.verify_signature(other, path, allowed) is None


# ---- diff ---------------------------------------------------------------------------------


def _save(tmp_path: Path, name: str, data: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_diff_names_regressions_and_exits_1(tmp_path: Path) -> None:
    old = _save(tmp_path, "old.json", report_data())
    new = _save(
        tmp_path,
        "new.json",
        report_data(statuses={"OG-NET-01": Status.FAIL, "OG-NET-03": Status.PASS}),
    )
    code, out, _ = _run(["report", "history", "diff", old, new])
    assert code == 1
    assert "OG-NET-01: pass -> fail (REGRESSED)" in out
    assert "OG-NET-03: fail -> pass (resolved)" in out
    assert "new failures: OG-NET-01" in out and "resolved failures: OG-NET-03" in out
    code, out, _ = _run(["report", "history", "diff", new, old, "--format", "json"])
    data = json.loads(out)
    assert code == 1 and data["regressions"] == ["OG-NET-03"]
    assert data["resolved_failures"] == ["OG-NET-01"]


def test_diff_without_changes_exits_0(tmp_path: Path) -> None:
    old = _save(tmp_path, "old.json", report_data())
    code, out, _ = _run(["report", "history", "diff", old, old])
    assert code == 0 and "regressions: none" in out


def test_diff_of_history_entries(chain: Path) -> None:
    history.append(chain, report_data(statuses={"OG-NET-01": Status.ERROR}))
    code, out, _ = _run(["report", "history", "diff", "1", "4", "--dir", str(chain)])
    assert code == 1 and "--- entry 1" in out and "OG-NET-01: pass -> error" in out
    code, _, err = _run(["report", "history", "diff", "1", "9", "--dir", str(chain)])
    assert code == 2 and "no entry 9" in err


def test_diff_flags_benchmark_medians_beyond_the_threshold(tmp_path: Path) -> None:
    before = benchmark_section()
    after = copy.deepcopy(before)
    after["categories"][0]["ttft_ms"]["median"] *= 1.5
    old = _save(tmp_path, "old.json", report_data(benchmark=before))
    new = _save(tmp_path, "new.json", report_data(benchmark=after))
    code, out, _ = _run(["report", "history", "diff", old, new])
    name = before["categories"][0]["name"]
    assert code == 1 and f"benchmark {name} ttft_ms.median" in out and "+50.0% worse" in out
    code, out, _ = _run(["report", "history", "diff", old, new, "--threshold", "60"])
    assert code == 0 and "nothing moved by more than 60%" in out
    code, out, _ = _run(["report", "history", "diff", new, old])  # faster: shown, not a regression
    assert code == 0 and "ttft_ms.median" in out
    code, _, err = _run(["report", "history", "diff", old, new, "--threshold", "-1"])
    assert code == 2 and "--threshold" in err


def test_audit_history_flag_appends_the_report_it_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the audit itself has its own tests; here only what `--history` adds to the command
    monkeypatch.setattr(audit_command, "run_audit", lambda *args: sample_report())
    monkeypatch.setattr(audit_command, "DEFAULT_CONFIG", tmp_path / "absent.toml")
    output, directory = tmp_path / "audit.json", tmp_path / "history"
    for _ in range(2):
        code, _, err = _run(["audit", "--output", str(output), "--history", str(directory)])
        assert code == 1 and "history" in err  # the sample report has a failing control
    entries = history.verify(directory).entries
    assert [e.seq for e in entries] == [1, 2]
    stored = json.loads((directory / "reports" / entries[1].report).read_text())
    assert stored == json.loads(output.read_text())

"""The history under crashes and misuse: kill -9 at random points, interrupted writes told
apart from tampering, `repair` recorded in the chain, and `verify` that never says "intact"
about what it could not check."""

from __future__ import annotations

import io
import os
import random
import signal
import stat
import time
from pathlib import Path

import pytest

from auditor.cli import main
from auditor.console import Console
from auditor.report import history
from auditor.report.history import (
    CHAIN_FILE,
    KEY_FILE,
    LOCK_FILE,
    PENDING_FILE,
    REPORTS_DIR,
    entry_hash,
)
from tests.unit.report_variants import report_data

KILLS = 60  # kill -9 rounds per fault test (bounded: the whole file runs in seconds)


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def _one_line_error(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("offgrid: error:") and "Traceback" not in err


def _report(n: int) -> dict[str, object]:
    return report_data(finished_at=f"2026-11-24T02:{n // 60 % 60:02d}:{n % 60:02d}+00:00")


def _appender(directory: Path, write_fd: int, start: int) -> None:
    """Child process: append forever, reporting each vouched-for seq on the pipe.

    Schema validation (pure computation, before anything is written) is skipped here so
    that the appends' time, and so the kills, fall on the writes that matter.
    """
    history.validate = lambda data: []  # type: ignore[assignment]
    n = start
    try:
        while True:
            entry = history.append(directory, _report(n))
            os.write(write_fd, f"{entry.seq} {entry.report}\n".encode())
            n += 1
    finally:
        os._exit(0)


def _kill_during_appends(directory: Path, rng: random.Random, start: int) -> list[str]:
    """Fork an appender, SIGKILL it at a random moment; the reports it confirmed."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        _appender(directory, write_fd, start)
    os.close(write_fd)
    time.sleep(rng.uniform(0.0, 0.2))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    confirmed = b""
    while chunk := os.read(read_fd, 65536):
        confirmed += chunk
    os.close(read_fd)
    return [line.split()[1] for line in confirmed.decode().splitlines()]


def _assert_vouched(directory: Path, names: list[str]) -> None:
    entries = {e.report for e in history.read_entries(directory)}
    missing = [name for name in names if name not in entries]
    assert not missing, f"confirmed reports lost: {missing}"


def test_kill_9_at_random_points_is_always_recoverable(tmp_path: Path) -> None:
    directory = tmp_path / "history"
    history.append(directory, _report(0))
    rng = random.Random(9)  # derandomized: the same kill points every run
    confirmed: list[str] = []
    interrupted = survived = 0
    for round_ in range(KILLS):
        confirmed += _kill_during_appends(directory, rng, 1000 * (round_ + 1))
        result = history.verify(directory)
        assert result.problems == (), [p.describe() for p in result.problems]
        if result.pending is not None:
            interrupted += 1
            if round_ % 2:  # half the time `repair` recovers it, half the next append does
                code, out, _err = _run(["report", "history", "repair", "--dir", str(directory)])
                assert code == 0 and "repaired:" in out
        after = history.verify(directory) if round_ % 2 else None
        assert after is None or (after.problems == () and after.pending is None)
        _assert_vouched(directory, confirmed)
        survived += 1
    history.append(directory, _report(99))
    final = history.verify(directory)
    assert final.problems == () and final.pending is None
    _assert_vouched(directory, confirmed)
    leftovers = [p.name for p in (directory / REPORTS_DIR).iterdir() if p.suffix == ".tmp"]
    assert leftovers == [] and not (directory / PENDING_FILE).exists()
    assert survived == KILLS
    print(
        f"kill -9 rounds survived: {survived}, interrupted mid-append: {interrupted}, "
        f"vouched-for reports kept: {len(confirmed)}/{len(confirmed)}"
    )


def _pending_after_report(directory: Path, torn: int | None) -> history.Entry:
    """The state a writer killed after its report (and `torn` bytes of its line) leaves."""
    key, _ = history.load_key(directory / KEY_FILE, "k", create=False)
    assert key is not None
    chain = (directory / CHAIN_FILE).read_bytes()
    previous = history.parse_line(chain.splitlines(keepends=True)[-1])
    data = history.canonical_json(_report(7))
    entry = history._new_entry(key, previous, data, "h", "2026-11-24T03:00:00Z")
    history._write_pending(directory, entry.to_line(), len(chain))
    (directory / REPORTS_DIR / entry.report).write_bytes(data)
    if torn is not None:
        with (directory / CHAIN_FILE).open("ab") as handle:
            handle.write(entry.to_line()[:torn])
    return entry


@pytest.mark.parametrize("torn", [None, 1, 40, -2])
def test_torn_line_is_an_interrupted_write_and_its_report_is_kept(
    tmp_path: Path, torn: int | None
) -> None:
    directory = tmp_path / "history"
    history.append(directory, _report(1))
    entry = _pending_after_report(directory, torn if torn is None or torn > 0 else None)
    if torn == -2:
        with (directory / CHAIN_FILE).open("ab") as handle:
            handle.write(entry.to_line()[:-2])
    code, out, _err = _run(["report", "history", "verify", "--dir", str(directory)])
    assert code == 3 and "interrupted" in out and "TAMPERED" not in out
    code, out, _ = _run(["report", "history", "repair", "--dir", str(directory)])
    assert code == 0 and f"completed the interrupted append of entry {entry.seq}" in out
    entries = history.read_entries(directory)
    assert entries[entry.seq - 1].report == entry.report  # the report is vouched for now
    assert "records a repair" in " ".join(history.verify(directory).notes)
    code, out, _ = _run(["report", "history", "verify", "--dir", str(directory)])
    assert code == 0 and out.startswith("intact: 3 entries")


def test_interrupted_before_the_report_is_rolled_back_by_the_next_append(tmp_path: Path) -> None:
    directory = tmp_path / "history"
    history.append(directory, _report(1))
    entry = _pending_after_report(directory, None)
    (directory / REPORTS_DIR / entry.report).unlink()  # killed before the report's rename
    new = history.append(directory, _report(2))
    entries = history.read_entries(directory)
    assert [e.seq for e in entries] == [1, 2, 3] and new.seq == 3
    assert "rolled back" in history.verify(directory).notes[0]
    assert history.verify(directory).problems == ()


def test_tampering_is_never_taken_for_an_interrupted_write(tmp_path: Path) -> None:
    directory = tmp_path / "history"
    for n in range(3):
        history.append(directory, _report(n))
    chain = (directory / CHAIN_FILE).read_bytes()
    (directory / CHAIN_FILE).write_bytes(chain[:-30])  # the last entry cut, no pending record
    code, out, err = _run(["report", "history", "verify", "--dir", str(directory)])
    assert code == 1 and "TAMPERED" in out
    code, _out, err = _run(["report", "history", "repair", "--dir", str(directory)])
    assert code == 0  # nothing it may repair: the damage stays visible
    assert history.verify(directory).problems != ()
    code, _out, err = _run(["report", "history", "append", "x.json", "--dir", str(directory)])
    assert code == 2 and _one_line_error(err)


def test_a_forged_pending_record_does_not_excuse_a_cut_chain(tmp_path: Path) -> None:
    directory = tmp_path / "history"
    for n in range(2):
        history.append(directory, _report(n))
    chain = (directory / CHAIN_FILE).read_bytes()
    last = chain.splitlines(keepends=True)[-1]
    (directory / CHAIN_FILE).write_bytes(chain[: len(chain) - len(last)] + last[:20])
    forged = last.replace(b'"hmac":"', b'"hmac":"0')[: len(last)]
    history._write_pending(directory, forged, len(chain) - len(last))
    code, out, _ = _run(["report", "history", "verify", "--dir", str(directory)])
    assert code == 1 and "TAMPERED" in out


@pytest.mark.parametrize("damage", ["missing", "world-readable", "typo"])
def test_verify_without_a_usable_key_is_exit_3_never_intact(tmp_path: Path, damage: str) -> None:
    directory = tmp_path / "history"
    for n in range(2):
        history.append(directory, _report(n))
    key = directory / KEY_FILE
    # an attacker rewrites every entry with recomputed hashes (no key needed for that)
    lines = []
    prev = history.GENESIS
    for entry in history.read_entries(directory):
        fields = entry.hashed() | {"host": "forged", "prev": prev}
        forged = history.Entry(**{k: v for k, v in fields.items() if k != "v"},
                               entry_hash=entry_hash(fields), hmac="0" * 64)  # fmt: skip
        lines.append(forged.to_line())
        prev = forged.entry_hash
    (directory / CHAIN_FILE).write_bytes(b"".join(lines))
    argv = ["report", "history", "verify", "--dir", str(directory)]
    if damage == "missing":
        key.unlink()
    elif damage == "world-readable":
        key.chmod(0o644)
    else:
        argv += ["--key", str(tmp_path / "histroy.key")]
    code, out, err = _run(argv)
    assert code == 3 and "cannot check the HMAC" in out + err and "intact" not in out


def test_bad_usage_and_unusable_places_are_one_line_exit_2(tmp_path: Path) -> None:
    directory = tmp_path / "history"
    history.append(directory, _report(0))
    before = (directory / CHAIN_FILE).read_bytes()
    report = tmp_path / "r.json"
    report.write_text(history.canonical_json(_report(5)).decode())
    cases = [
        ["report", "history", "verify", "--dir", str(directory), "--expect-head", "zzz"],
        ["report", "history", "append", str(report), "--dir", str(directory),
         "--ssh-key", str(tmp_path / "missing")],
    ]  # fmt: skip
    for argv in cases:
        code, _out, err = _run(argv)
        assert code == 2 and _one_line_error(err), (argv, err)
    assert (directory / CHAIN_FILE).read_bytes() == before  # nothing appended by the failure
    (directory / LOCK_FILE).unlink()
    (directory / LOCK_FILE).mkdir()
    code, _out, err = _run(["report", "history", "append", str(report), "--dir", str(directory)])
    assert code == 2 and _one_line_error(err) and "lock" in err
    (directory / LOCK_FILE).rmdir()
    (directory / LOCK_FILE).symlink_to(tmp_path / "elsewhere")
    code, _out, err = _run(["report", "history", "append", str(report), "--dir", str(directory)])
    assert code == 2 and _one_line_error(err) and not (tmp_path / "elsewhere").exists()
    assert (directory / CHAIN_FILE).read_bytes() == before


def test_chain_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path: Path) -> None:
    directory = tmp_path / "history"
    directory.mkdir()
    os.mkfifo(directory / CHAIN_FILE)
    code, _out, err = _run(["report", "history", "verify", "--dir", str(directory)])
    assert code == 2 and _one_line_error(err) and "FIFO" in err
    assert stat.S_ISFIFO(os.lstat(directory / CHAIN_FILE).st_mode)

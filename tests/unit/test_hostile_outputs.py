"""Writes that must not destroy: outputs onto a device node, a FIFO, a directory, a symlink
and a read-only mount, and a history whose disk fills up mid-append.

Everything that needs a mount or a device node runs in a mount namespace the test creates
(`unshare --mount --propagation private`) on a tmpfs mounted over a directory of tmp_path:
nothing is mounted on the host's paths and the real /dev is never touched.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from auditor.cli import main
from auditor.console import Console
from auditor.fsutil import atomic_write_text
from auditor.report import history
from tests.unit.report_variants import report_data

REPO = Path(__file__).resolve().parents[2]


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def _one_line_error(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("offgrid: error:") and "Traceback" not in err


def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True, check=False
    )
    return probe.returncode == 0


needs_namespace = pytest.mark.skipif(
    not _can_unshare(), reason="needs root and unshare --mount (a private mount namespace)"
)


def _in_namespace(
    tmp_path: Path, script: str, size: str = "1m"
) -> subprocess.CompletedProcess[str]:
    """Run `script` (sh) in a private mount namespace with a tmpfs of `size` on $MNT."""
    mnt = tmp_path / "mnt"
    mnt.mkdir(exist_ok=True)
    prologue = f"set -e\nMNT={mnt}\nmount -t tmpfs -o size={size},mode=0755 offgrid-test $MNT\n"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PY": sys.executable}
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", prologue + script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def report_file(tmp_path: Path) -> Path:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report_data()))
    return path


def test_writer_refuses_fifo_directory_and_symlink(tmp_path: Path, report_file: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    for target in (fifo, tmp_path / "dir", tmp_path / "link", tmp_path / "missing" / "x.html"):
        code, _out, err = _run(
            ["report", "render", str(report_file), "-f", "html", "-o", str(target)]
        )
        assert code == 2 and _one_line_error(err), (target, err)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and (tmp_path / "dir").is_dir()
    assert (tmp_path / "link").is_symlink() and not (tmp_path / "target").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_writer_removes_only_its_own_stale_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    stale = tmp_path / f".out.json.{dead.stdout.strip()}.abc123.tmp"
    live = tmp_path / f".out.json.{os.getpid()}.zzz999.tmp"
    foreign = tmp_path / ".other.json.1.abc.tmp"
    for path in (stale, live, foreign):
        path.write_text("partial")
    atomic_write_text(target, "{}\n")
    assert not stale.exists() and live.exists() and foreign.exists()
    assert target.read_text() == "{}\n"


def test_nan_never_reaches_json_output(tmp_path: Path) -> None:
    data = report_data()
    data["extra"] = {"cost": float("inf")}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))  # Python writes Infinity; offgrid must refuse it
    for argv in (["report", "render", str(path), "-f", "json"], ["report", "validate", str(path)]):
        code, out, err = _run(argv)
        assert code == 2 and _one_line_error(err) and "Infinity" not in out


def _results(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@needs_namespace
def test_outputs_onto_device_node_fifo_directory_and_read_only_mount(
    tmp_path: Path, report_file: Path
) -> None:
    mnt = tmp_path / "mnt"
    targets = [mnt / "null", mnt / "fifo", mnt / "dir", mnt / "ro" / "out.html"]
    bench = ["bench", "--endpoint", "http://127.0.0.1:9", "--api", "ollama", "--model", "m"]
    argvs = [
        argv
        for target in map(str, targets)
        for argv in (
            ["report", "render", str(report_file), "-f", "html", "-o", target],
            ["report", "fleet", str(tmp_path), "-f", "json", "-o", target],
            [*bench, "--output", target],
        )
    ]
    zero = str(mnt / "zero")  # a character device as input: endless bytes, no size
    argvs += [
        ["report", "render", zero, "-f", "html"],
        ["report", "validate", zero],
        ["bench", "compare", zero, zero],
        ["audit", "--config", zero],
        [*bench, "--prices", zero],
    ]
    script = textwrap.dedent(f"""
        mknod $MNT/null c 1 3
        mknod $MNT/zero c 1 5
        mkfifo $MNT/fifo
        mkdir $MNT/dir $MNT/ro
        mount -t tmpfs -o size=64k,ro offgrid-ro $MNT/ro
        "$PY" -m tests.unit.cli_driver '{json.dumps(argvs)}'
        stat -c '%F %t,%T' $MNT/null
        stat -c '%F' $MNT/fifo $MNT/dir
        find $MNT/dir $MNT/ro -mindepth 1 | wc -l
    """)
    done = _in_namespace(tmp_path, script)
    assert done.returncode == 0, done.stderr
    results = _results(done.stdout)
    assert len(results) == len(argvs) == 17
    for argv, result in zip(argvs, results, strict=True):  # refused: exit 2, one line
        assert result["rc"] == 2 and _one_line_error(result["err"]), (argv, result)
    lines = done.stdout.splitlines()
    assert "character special file 1,3" in lines[-4]  # the device node is still a device
    assert lines[-3:-1] == ["fifo", "directory"] and lines[-1] == "0"


@needs_namespace
def test_full_disk_mid_append_loses_nothing_and_recovers(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text(json.dumps(report_data()))
    directory = tmp_path / "mnt" / "history"
    append = ["report", "history", "append", str(report), "--dir", str(directory)]
    verify = ["report", "history", "verify", "--dir", str(directory)]
    script = textwrap.dedent(f"""
        "$PY" -m tests.unit.cli_driver --until-failure 200 {" ".join(append)}
        "$PY" -m tests.unit.cli_driver '{json.dumps([verify])}'
        mount -o remount,size=4m $MNT
        "$PY" -m tests.unit.cli_driver '{json.dumps([append, verify])}'
        find {directory} -name '*.tmp' | wc -l
    """)
    done = _in_namespace(tmp_path, script, size="48k")
    assert done.returncode == 0, done.stderr
    full, verify_full, append_after, verify_after = _results(done.stdout)
    appended = full["succeeded"]
    assert appended > 0 and full["rc"] == 2 and _one_line_error(full["err"]), full
    assert "no space left" in full["err"]
    assert verify_full["rc"] == 0 and verify_full["out"].startswith(f"intact: {appended} entries")
    assert append_after["rc"] == 0, append_after
    assert verify_after["rc"] == 0 and verify_after["out"].startswith("intact:"), verify_after
    assert done.stdout.splitlines()[-1] == "0"  # no temporary left behind


def test_history_preflight_refuses_before_the_audit(tmp_path: Path) -> None:
    directory = tmp_path / "history"
    history.append(directory, report_data())
    (directory / history.LOCK_FILE).unlink()
    (directory / history.LOCK_FILE).mkdir()
    with pytest.raises(history.InputError, match="directory"):
        history.preflight(directory)

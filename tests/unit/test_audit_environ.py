"""/proc/PID/environ parsing, on recorded bytes and on a real child process."""

from __future__ import annotations

import os
import subprocess
import sys

from auditor.inventory.environ import parse_environ, read_environ


def test_parse_recorded_block() -> None:
    raw = b"PATH=/usr/bin\0OLLAMA_HOST=127.0.0.1:11434\0EMPTY=\0A=b=c\0junk\0\0"
    assert parse_environ(raw) == {
        "PATH": "/usr/bin",
        "OLLAMA_HOST": "127.0.0.1:11434",
        "EMPTY": "",
        "A": "b=c",
    }


def test_non_utf8_is_kept_not_dropped() -> None:
    env = parse_environ(b"X=\xff\xfe\0")
    assert env["X"].encode("utf-8", "surrogateescape") == b"\xff\xfe"


def test_real_process_environment() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(30)"],
        env={**os.environ, "OFFGRID_ENV_PROBE": "seen"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # Popen may return before the child has exec'd (vfork): until then /proc shows
        # the parent's environment, so wait for the child to speak first
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        env = read_environ(child.pid)
        assert env is not None and env["OFFGRID_ENV_PROBE"] == "seen"
    finally:
        child.kill()
        child.wait()


def test_gone_process_is_none() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert read_environ(child.pid) is None

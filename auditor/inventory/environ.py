"""A process's real environment, read from /proc/PID/environ."""

from __future__ import annotations

from pathlib import Path


def parse_environ(raw: bytes) -> dict[str, str]:
    """Parse the NUL-separated KEY=VALUE block of /proc/PID/environ.

    Entries without "=" are skipped (the kernel does not check the format);
    a later duplicate wins, as getenv would see the first one but systemd never
    produces duplicates and a test harness that does wants the override.
    """
    env: dict[str, str] = {}
    for entry in raw.split(b"\0"):
        if not entry:
            continue
        key, sep, value = entry.partition(b"=")
        if not sep or not key:
            continue
        env[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
    return env


def read_environ(pid: int, proc: Path = Path("/proc")) -> dict[str, str] | None:
    """The environment the process was started with; None if it cannot be read."""
    try:
        raw = (proc / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    return parse_environ(raw)

"""Start, find and stop the systemd-nspawn process that runs a workstation.

Each workstation's nspawn runs in a cgroup of its own (one per name), so stopping it can
reach every process of the container even when nspawn itself has already died, and two
workstations never share the cgroup their systemd manages.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

CGROUP_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd"))
# Moves the shell into the workstation's cgroups, then becomes systemd-nspawn.
_ENTER_CGROUPS = (
    'for cg in "$@"; do case "$cg" in --) break;; esac; '
    'echo $$ > "$cg/cgroup.procs"; done; while [ "$1" != -- ]; do shift; done; shift; exec "$@"'
)


def cgroup_dirs(name: str) -> list[Path]:
    roots = [root for root in CGROUP_ROOTS if (root / "cgroup.procs").exists()]
    if not roots and Path("/sys/fs/cgroup/cgroup.procs").exists():
        roots = [Path("/sys/fs/cgroup")]  # a pure cgroup v2 host
    return [root / f"offgrid-workstation-{name}" for root in roots]


def start(name: str, root: Path, netns: str, console_log: Path) -> int:
    """Boot the tree in its own session; returns the nspawn pid."""
    cgroups = cgroup_dirs(name)
    for directory in cgroups:
        directory.mkdir(exist_ok=True)
    command = [
        "systemd-nspawn",
        "--quiet",
        "--register=no",
        "--keep-unit",
        f"--machine={name}",
        "-D",
        str(root),
        f"--network-namespace-path=/run/netns/{netns}",
        # Without these (and cgroup v2) the unit's IPAddressDeny= is reported but not enforced.
        "--capability=all",
        "--system-call-filter=@system-service bpf",
        "--resolv-conf=off",
        "--timezone=off",
        "--link-journal=no",
        "--console=read-only",
        "-b",
    ]
    env = {**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}
    with open(console_log, "ab") as log:
        process = subprocess.Popen(
            ["sh", "-c", _ENTER_CGROUPS, "sh", *map(str, cgroups), "--", *command],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return process.pid


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def nspawn_pids_for(root: Path) -> list[int]:
    """systemd-nspawn processes booting this tree (a leftover of a crashed session)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"systemd-nspawn") and str(root).encode() in argv:
            found.append(int(entry.name))
    return found


def stop(name: str, pids: list[int], grace_s: float = 15.0) -> None:
    """SIGTERM asks nspawn for an orderly poweroff; whatever is left is killed by cgroup."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        _reap(pids)
        time.sleep(0.2)
    _reap(pids)
    _kill_cgroups(name)


def _reap(pids: list[int]) -> None:
    # nspawn is our child when this process booted it; reap it so it is not left a zombie.
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def _kill_cgroups(name: str) -> None:
    for directory in cgroup_dirs(name):
        if not directory.exists():
            continue
        for _attempt in range(50):
            pids = _cgroup_pids(directory)
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _reap(pids)
            time.sleep(0.1)
        _remove_cgroup_tree(directory)


def _cgroup_pids(directory: Path) -> list[int]:
    pids: list[int] = []
    for procs in directory.rglob("cgroup.procs"):
        with contextlib.suppress(OSError):
            pids.extend(int(line) for line in procs.read_text().split())
    return pids


def _remove_cgroup_tree(directory: Path) -> None:
    # cgroup directories are removed bottom-up with rmdir; files inside are virtual.
    children = sorted((p for p in directory.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
    for child in [*children, directory]:
        with contextlib.suppress(OSError):
            child.rmdir()


def unmount_below(path: Path) -> None:
    """Lazily unmount anything a crashed nspawn left mounted inside the machine directory."""
    out = subprocess.run(
        ["findmnt", "-rn", "-o", "TARGET"], check=False, capture_output=True, text=True
    ).stdout
    prefix = str(path).rstrip("/") + "/"
    targets = [line for line in out.splitlines() if line.startswith(prefix)]
    for target in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)

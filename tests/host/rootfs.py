"""The test workstation's root filesystem: debootstrap'ed Debian 12, cached as a tarball.

debootstrap takes minutes, so the finished tree is packed once into
/var/cache/offgrid/workstation-rootfs-<hash>.tar.zst (outside the repository) and every
test session unpacks a fresh copy. The hash covers everything that shapes the tree, so
changing the package list builds a new tarball instead of reusing a stale one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.host import log

CACHE_DIR = Path(os.environ.get("OFFGRID_CACHE_DIR", "/var/cache/offgrid"))
MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
# The minimal set debootstrap installs so the tree boots with systemd.
BOOTSTRAP_PACKAGES = ("systemd", "systemd-sysv", "dbus", "iproute2", "python3")
# Installed inside afterwards: SSH for the controller, and what a real workstation's base
# image carries that the roles rely on (they never install Debian packages: the target is
# offline). libgomp1/libstdc++6 are the llama.cpp wheel's shared-library needs.
INSIDE_PACKAGES = (
    "openssh-server",
    "sudo",
    "nftables",
    "python3-venv",
    "python3-pip",
    "zstd",
    "tar",
    "procps",
    "iproute2",
    "pciutils",
    "curl",
    "libgomp1",
    "libstdc++6",
)
# Timers that would try to reach a mirror or just cost boot time on a throwaway machine.
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "apt-daily.service",
    "apt-daily-upgrade.service",
    "e2scrub_reap.service",
    "systemd-timesyncd.service",
)
# Bump when the build steps below change in a way the package lists do not show.
BUILD_REVISION = "1"


def cache_key() -> str:
    spec = "\n".join(
        [
            MIRROR,
            SUITE,
            BUILD_REVISION,
            *BOOTSTRAP_PACKAGES,
            "--",
            *INSIDE_PACKAGES,
            "--",
            *MASKED_UNITS,
        ]
    )
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def tarball_path() -> Path:
    return CACHE_DIR / f"workstation-rootfs-{cache_key()}.tar.zst"


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """Serialise builds: two sessions starting cold must not both run debootstrap."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".rootfs-build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_tarball() -> Path:
    """The cached rootfs tarball, built first if this package list has none yet."""
    target = tarball_path()
    if target.is_file():
        return target
    with _build_lock():
        if target.is_file():  # another session finished it while we waited
            return target
        _build(target)
    return target


def _build(target: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="rootfs-build-", dir=CACHE_DIR))
    root = work / "root"
    try:
        log.info(f"building the workstation rootfs (debootstrap {SUITE}, a few minutes once)")
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BOOTSTRAP_PACKAGES)}",
                SUITE,
                str(root),
                MIRROR,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        _write_apt_sources(root)
        _nspawn_run(root, ["apt-get", "update", "-qq"])
        _nspawn_run(
            root, ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *INSIDE_PACKAGES]
        )
        _nspawn_run(root, ["apt-get", "clean"])
        _nspawn_run(root, ["systemctl", "mask", *MASKED_UNITS])
        _nspawn_run(root, ["systemctl", "enable", "ssh.service"])
        _configure(root)
        partial = target.with_suffix(".partial")
        subprocess.run(
            [
                "tar",
                "--zstd",
                "--numeric-owner",
                "--xattrs",
                "-C",
                str(root),
                "-cpf",
                str(partial),
                ".",
            ],
            check=True,
        )
        partial.rename(target)
        log.info(f"cached the rootfs at {target}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _write_apt_sources(root: Path) -> None:
    (root / "etc/apt/sources.list").write_text(f"deb {MIRROR} {SUITE} main\n")


def _configure(root: Path) -> None:
    # An empty machine-id makes systemd generate a fresh one on every boot of a copy.
    (root / "etc/machine-id").write_text("")
    (root / "etc/hostname").write_text("offgrid-workstation\n")
    # Root logs in with the per-session key only.
    sshd_dropin = root / "etc/ssh/sshd_config.d/offgrid-test.conf"
    sshd_dropin.write_text(
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n"
    )


def _nspawn_run(root: Path, command: list[str]) -> None:
    """Run a command inside the (not booted) tree with the host's network, for apt."""
    ensure_nspawn_runtime_dir()
    subprocess.run(
        [
            "systemd-nspawn",
            "--quiet",
            "--register=no",
            "--keep-unit",
            "--resolv-conf=copy-host",
            "-E",
            "DEBIAN_FRONTEND=noninteractive",
            "-D",
            str(root),
            *command,
        ],
        check=True,
        capture_output=True,
        text=True,
    )


def ensure_nspawn_runtime_dir() -> None:
    """nspawn refuses to clean up a /run/systemd/nspawn that is not a tmpfs."""
    runtime = Path("/run/systemd/nspawn")
    with _runtime_lock():
        if subprocess.run(["mountpoint", "-q", str(runtime)], check=False).returncode == 0:
            return
        runtime.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(runtime)], check=True
        )


@contextlib.contextmanager
def _runtime_lock() -> Iterator[None]:
    # Two sessions mounting at once would stack tmpfs and hide each other's state.
    Path("/run/lock").mkdir(parents=True, exist_ok=True)
    with open("/run/lock/offgrid-nspawn-runtime.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def unpack(tarball: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["tar", "--zstd", "--numeric-owner", "--xattrs", "-C", str(dest), "-xpf", str(tarball)],
        check=True,
    )


def clone(source: Path, dest: Path) -> None:
    """Copy another machine's root (one file system, ownership, modes, xattrs kept); the copy
    gets a fresh machine-id on its first boot."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["cp", "-a", "--reflink=auto", "--one-file-system", f"{source}/.", str(dest)],
        check=True,
    )
    (dest / "etc/machine-id").write_text("")

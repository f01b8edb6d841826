"""Debian packages for the bundle: resolve a dependency closure on the staging box, pin it.

The workstation has no network, so every Debian package a role needs there travels in the
bundle. The staging box runs the same Debian release as the fleet and resolves, with its own
apt, the closure of the requested packages (Depends and Pre-Depends, recursively; no
Recommends or Suggests), downloads each .deb and pins it by sha256. The target installs from
those files only (see the offgrid_debs role): whatever it already has is left alone.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from auditor.errors import InputError, UsageError
from auditor.models.copying import copy_hashed
from auditor.models.lockfile import DebPin, DebSet
from auditor.models.verify import BUNDLE_DEBS_DIR

_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_EXCLUDE = ("--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks",
            "--no-replaces", "--no-enhances")  # fmt: skip
Log = Callable[[str], None]


def _run(command: list[str], cwd: Path | None = None) -> str:
    if shutil.which(command[0]) is None:
        raise UsageError(f"{command[0]} is not installed: add-debs runs on a Debian staging box")
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise InputError(f"{' '.join(command[:2])} failed: {last[:300]}")
    return done.stdout


def parse_closure(text: str) -> list[str]:
    """Package names from `apt-cache depends --recurse`: the unindented lines, virtual ones
    (`<name>`) left out, since apt lists the packages that provide them as well."""
    names: dict[str, None] = {}
    for line in text.splitlines():
        if not line or line[0].isspace() or line.startswith("<"):
            continue
        names[line.strip().removesuffix(":any")] = None
    return sorted(names)


def closure(packages: Sequence[str]) -> list[str]:
    for name in packages:
        if not _NAME.match(name):
            raise UsageError(f"not a Debian package name: {name!r}")
    return parse_closure(_run(["apt-cache", "depends", "--recurse", *_EXCLUDE, *packages]))


def _release() -> str:
    for line in Path("/etc/os-release").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME" and value.strip('"'):
            return value.strip('"')
    raise UsageError("cannot tell this machine's Debian release (no VERSION_CODENAME)")


def _fields(deb: Path) -> tuple[str, str, str]:
    out = _run(["dpkg-deb", "--show", "--showformat=${Package}\\t${Version}\\t${Architecture}",
                str(deb)])  # fmt: skip
    name, version, arch = out.split("\t")
    return name, version, arch


def add_debs(bundle: Path, requested: Sequence[str], log: Log) -> DebSet:
    """Download the closure of `requested` into <bundle>/debs/ and return its pins."""
    if not requested:
        raise UsageError("name at least one Debian package")
    names = closure(requested)
    log(f"{len(names)} package(s) in the closure of {', '.join(requested)}")
    dest = bundle / BUNDLE_DEBS_DIR
    dest.mkdir(parents=True, exist_ok=True)
    pins = []
    with tempfile.TemporaryDirectory(prefix="offgrid-debs-") as scratch:
        _run(["apt-get", "download", "-q", *names], cwd=Path(scratch))
        for deb in sorted(Path(scratch).glob("*.deb")):
            name, version, arch = _fields(deb)
            rel = f"{BUNDLE_DEBS_DIR}/{deb.name}"
            copied = copy_hashed(deb, bundle / rel)
            assert copied.sha256 is not None
            pins.append(DebPin(name, version, arch, rel, copied.sha256, copied.size))
    missing = sorted(set(names) - {p.name for p in pins})
    if missing:
        raise InputError(f"apt-get download brought no .deb for: {', '.join(missing)}")
    architecture = _run(["dpkg", "--print-architecture"]).strip()
    return DebSet(_release(), architecture, tuple(requested), tuple(pins))

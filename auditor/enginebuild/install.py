"""Put a recipe-built engine into a Python environment, or into a bundle's wheelhouse.

`install` is what `make setup` runs: pip may only take the engine from the recipe's wheel
(`--only-binary`, so it can never fall back to building the sdist natively), and an
environment that already holds another build of the same version (pip would call it
"already satisfied") gets ours instead, decided by comparing the native libraries' hashes.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from auditor.enginebuild.cache import LIB_PREFIX, BuildError, BuiltEngine, cached
from auditor.enginebuild.recipe import PACKAGE, REQUIREMENT, VARIANTS, spec_for
from auditor.errors import InputError


def _wheel_lib_hashes(wheel: Path) -> dict[str, str]:
    """RECORD hashes (sha256=urlsafe-b64) of the wheel's native libraries."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            record = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
            text = archive.read(record).decode("utf-8")
    except (zipfile.BadZipFile, OSError, StopIteration) as exc:
        raise InputError(f"{wheel}: not a readable wheel ({exc})") from None
    rows = csv.reader(io.StringIO(text))
    return {row[0]: row[1] for row in rows if len(row) >= 2 and row[0].startswith(LIB_PREFIX)}


def installed_matches(wheel: Path) -> bool:
    """Whether this environment's llama_cpp native libraries are byte for byte the wheel's."""
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        return False
    wanted = _wheel_lib_hashes(wheel)
    have = {str(f): f.hash for f in dist.files or () if str(f).startswith(LIB_PREFIX)}
    if set(have) != set(wanted):
        return False
    for rel, recorded in wanted.items():
        path = Path(str(dist.locate_file(rel)))
        try:
            digest = hashlib.sha256(path.read_bytes()).digest()
        except OSError:
            return False
        actual = "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if actual != recorded or have[rel] is None:
            return False
    return True


def installed_build(cache_root: Path) -> BuiltEngine | None:
    """The cached CPU build whose native libraries this environment has installed, if any."""
    for name, variant in VARIANTS.items():
        hit = None if variant.cuda else cached(spec_for(name), cache_root)
        if hit is not None and installed_matches(hit.wheel):
            return hit
    return None


def pip_install(built: BuiltEngine) -> None:
    """Install into the running interpreter's environment (the one `installed_matches` reads)."""
    command = [
        sys.executable, "-m", "pip", "install", "-q", "--only-binary", PACKAGE,
        "--find-links", str(built.wheel.parent), REQUIREMENT,
    ]  # fmt: skip
    _run(command, "installing the engine")
    if not installed_matches(built.wheel):
        # The same version from another build was there: replace only the engine itself.
        _run([*command[:4], "--force-reinstall", "--no-deps", *command[4:]], "reinstalling")
    if not installed_matches(built.wheel):
        raise BuildError("the installed llama_cpp libraries still differ from the recipe's wheel")


def build_wheelhouse(built: BuiltEngine, python: str, dest: Path) -> list[Path]:
    """The engine wheel and every dependency of llama-cpp-python[server] as wheels."""
    dest.mkdir(parents=True, exist_ok=True)
    command = [
        python, "-m", "pip", "wheel", "-q", "--only-binary", PACKAGE,
        "--find-links", str(built.wheel.parent), "--wheel-dir", str(dest), REQUIREMENT,
    ]  # fmt: skip
    _run(command, "collecting the engine's wheelhouse")
    return sorted(dest.glob("*.whl"))


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BuildError(f"{what} failed (pip exit {done.returncode}): {tail[:300]}")

"""Build the llama.cpp engine wheel once per build spec and keep it in the project's cache.

Layout: `<cache>/llamacpp/<version>-<variant>-<python>-<key>/` holds the wheel and
`build.json` (the spec, the instruction sets found in its libraries, how long it took). The
directory is built under a temporary name and renamed into place, so a build that was killed
leaves no entry that looks finished; concurrent builds of the same spec wait on one lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from auditor import safeio
from auditor.enginebuild import isa
from auditor.enginebuild.recipe import PACKAGE, BuildSpec
from auditor.errors import InputError, OffgridError
from auditor.exitcodes import ExitCode

Log = Callable[[str], None]
BUILD_RECORD = "build.json"
LIB_PREFIX = "llama_cpp/lib/"


class BuildError(OffgridError):
    """The engine could not be built, or the build is not what its recipe promises."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class BuiltEngine:
    spec: BuildSpec
    wheel: Path
    found_isa: tuple[str, ...]  # cpuinfo flags whose instructions the libraries contain
    build_seconds: float

    @property
    def cpu_baseline(self) -> tuple[str, ...]:
        """What a CPU must advertise: the variant's flags and whatever the scan found."""
        return tuple(sorted({*self.spec.variant.cpu_baseline, *self.found_isa}))


def default_cache_root() -> Path:
    configured = os.environ.get("OFFGRID_CACHE_DIR")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/cache/offgrid")
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "offgrid"


def entry_dir(spec: BuildSpec, cache_root: Path) -> Path:
    return cache_root / "llamacpp" / spec.label


def cached(spec: BuildSpec, cache_root: Path) -> BuiltEngine | None:
    entry = entry_dir(spec, cache_root)
    try:
        record = safeio.load_json(entry / BUILD_RECORD, 1 << 20, what="engine build record")
        wheel = entry / str(record["wheel"])
        found = tuple(str(f) for f in record["found_isa"])
        seconds = float(record["build_seconds"])
    except (InputError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no finished build here: an absent, partial or foreign record
    if record.get("key") != spec.cache_key() or not wheel.is_file():
        return None
    return BuiltEngine(spec, wheel, found, seconds)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_built(spec: BuildSpec, cache_root: Path, log: Log) -> BuiltEngine:
    """The cached wheel for this spec, building it first if there is none."""
    hit = cached(spec, cache_root)
    if hit is not None:
        return hit
    parent = cache_root / "llamacpp"
    with _locked(parent / f".{spec.label}.lock"):
        hit = cached(spec, cache_root)  # another process may have built it meanwhile
        if hit is not None:
            return hit
        _remove_stale_builds(parent)
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=parent))
        try:
            built = _build_into(spec, staging, log)
            staging.rename(entry_dir(spec, cache_root))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return dataclasses.replace(built, wheel=entry_dir(spec, cache_root) / built.wheel.name)


def _remove_stale_builds(parent: Path) -> None:
    """Staging directories of builds that were killed (we hold the lock for our label only,
    so only staging dirs older than a day are taken for dead)."""
    cutoff = time.time() - 86400
    for stale in parent.glob(".build-*"):
        with contextlib.suppress(OSError):
            if stale.stat().st_mtime < cutoff:
                shutil.rmtree(stale, ignore_errors=True)


def build_env(spec: BuildSpec) -> dict[str, str]:
    """The environment pip builds in: the recipe's flags and nothing that could add others."""
    env = {k: v for k, v in os.environ.items() if k not in ("CFLAGS", "CXXFLAGS", "CMAKE_ARGS")}
    env["CMAKE_ARGS"] = " ".join(spec.cmake_args)
    env["FORCE_CMAKE"] = "1"
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 1))
    return env


def _build_into(spec: BuildSpec, staging: Path, log: Log) -> BuiltEngine:
    log(f"building {PACKAGE} {spec.version} ({spec.variant.name}); this takes about 10 minutes")
    log(f"CMAKE_ARGS={' '.join(spec.cmake_args)}")
    started = time.monotonic()
    wheel = _pip_wheel(spec, staging)
    built = record_build(spec, wheel, round(time.monotonic() - started, 1))
    log(f"built {wheel.name} in {built.build_seconds:.0f} s; its libraries use: "
        f"{', '.join(built.found_isa)}")  # fmt: skip
    return built


def _pip_wheel(spec: BuildSpec, staging: Path) -> Path:
    command = [
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir",
        "--no-binary", PACKAGE, "--wheel-dir", str(staging), f"{PACKAGE}=={spec.version}",
    ]  # fmt: skip
    logfile = staging / "build.log"
    with open(logfile, "wb") as out:
        done = subprocess.run(command, env=build_env(spec), stdout=out, stderr=out, check=False)
    if done.returncode != 0:
        tail = logfile.read_text(errors="replace").strip().splitlines()[-3:]
        raise BuildError(
            f"building {PACKAGE} failed (pip exit {done.returncode}): {' | '.join(tail)}"
        )
    wheels = sorted(staging.glob("llama_cpp_python-*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"pip produced {len(wheels)} llama_cpp_python wheels, expected one")
    return wheels[0]


def record_build(spec: BuildSpec, wheel: Path, seconds: float) -> BuiltEngine:
    """Scan a freshly built wheel, refuse it if it breaks its variant, and write its record
    beside it."""
    found = scan_wheel(wheel, wheel.parent / "scan")
    forbidden = sorted(set(found) - set(spec.variant.cpu_baseline))
    if forbidden and not spec.variant.native:
        raise BuildError(
            f"the built libraries use {', '.join(forbidden)}, which variant "
            f"{spec.variant.name} excludes: something added compiler flags (check CFLAGS and the "
            "toolchain's defaults)"
        )
    record = {
        "key": spec.cache_key(),
        "wheel": wheel.name,
        "variant": spec.variant.name,
        "cmake_args": list(spec.cmake_args),
        "compiler": spec.compiler,
        "python_tag": spec.python_tag,
        "cuda": None if spec.cuda is None else {
            "version": spec.cuda.version, "architectures": list(spec.cuda.architectures)},
        "found_isa": sorted(found),
        "build_seconds": seconds,
    }  # fmt: skip
    (wheel.parent / BUILD_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return BuiltEngine(spec, wheel, tuple(sorted(found)), seconds)


def scan_wheel(wheel: Path, scratch: Path) -> set[str]:
    """Instruction sets used by every native library in the wheel."""
    found: set[str] = set()
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                name = info.filename
                if not name.startswith(LIB_PREFIX) or ".so" not in name or info.is_dir():
                    continue
                target = scratch / Path(name).name
                with archive.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                found |= isa.scan_library(target)
                target.unlink()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{wheel}: not a readable wheel: {exc}") from None
    return found

"""Engine pins: record an engine artifact in the bundle, and check a running engine against it.

- ollama: the release tarball (`.tar.zst` or `.tgz`) is pinned as a bundle artifact, and as
  binaries `bin/ollama` and every file under `lib/ollama/` (ggml and its CPU, CUDA and Vulkan
  backends, the llama-server runner), paths relative to the install prefix. OG-INT-01 hashes
  the running engine's executable and every pinned file of the installed `lib/ollama/` tree
  (a missing, altered or unpinned file fails), and checks that every library the engine and
  its runners have mapped from that tree (/proc/PID/maps) is a pinned one.
- llamacpp: the engine is Python code plus llama.cpp's native libraries from the
  llama-cpp-python wheel. The wheelhouse is pinned as artifacts, and every native library in
  that wheel (`llama_cpp/lib/*.so*`) as a binary: those libraries hold the inference code and
  are what an attacker would swap. OG-INT-01 hashes the copies the running server has mapped
  (/proc/PID/maps), so it checks what really executes, wherever the venv lives.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

from auditor.engine_kind import EngineKind
from auditor.errors import InputError
from auditor.models.copying import copy_hashed
from auditor.models.hashing import CHUNK, sha256_file
from auditor.models.lockfile import EngineBuild, EnginePin, FilePin

OLLAMA_BINARY = "bin/ollama"
OLLAMA_LIBDIR = "lib/ollama/"
_ENGINE_LIBRARIES = ("libggml", "libllama", "libmtmd")  # inference code, wherever mapped
LLAMACPP_WHEEL = re.compile(r"^llama_cpp_python-([^-]+)-.*\.whl$")
LLAMACPP_LIB = re.compile(r"^llama_cpp/lib/[^/]+\.so(\.[0-9]+)*$")


def _hash_stream(stream: IO[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


@contextlib.contextmanager
def _tar_stream(tarball: Path) -> Iterator[tarfile.TarFile]:
    """The tarball as a stream (zstd through a pipe), so nothing is unpacked to disk."""
    if not tarball.name.endswith(".tar.zst"):
        with tarfile.open(tarball, mode="r|*") as archive:
            yield archive
        return
    if shutil.which("zstd") is None:
        raise InputError("reading a .tar.zst needs the zstd command (apt-get install zstd)")
    with subprocess.Popen(
        ["zstd", "-dcq", "--", str(tarball)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
            yield archive


def _tree_member(name: str) -> bool:
    return name == OLLAMA_BINARY or (name.startswith(OLLAMA_LIBDIR) and ".." not in name)


def tarball_binaries(tarball: Path) -> tuple[FilePin, ...]:
    """sha256 and size of bin/ollama and every regular file under lib/ollama/ in the release
    tarball, read as a stream (links point at pinned files and are not pinned themselves)."""
    pins = []
    try:
        with _tar_stream(tarball) as archive:
            for member in archive:
                name = member.name.removeprefix("./")
                if member.isfile() and _tree_member(name):
                    handle = archive.extractfile(member)
                    assert handle is not None
                    sha, size = _hash_stream(handle)
                    pins.append(FilePin(name, sha, size))
    except (tarfile.TarError, OSError) as exc:
        raise InputError(f"{tarball}: not a readable tarball: {exc}") from None
    if not any(p.path == OLLAMA_BINARY for p in pins):
        raise InputError(f"{tarball}: has no {OLLAMA_BINARY}; is it an Ollama release tarball?")
    return tuple(sorted(pins, key=lambda p: p.path))


def wheel_binaries(wheel: Path) -> tuple[FilePin, ...]:
    try:
        with zipfile.ZipFile(wheel) as archive:
            pins = []
            for info in archive.infolist():
                if LLAMACPP_LIB.match(info.filename) and not info.is_dir():
                    with archive.open(info) as handle:
                        sha, size = _hash_stream(handle)
                    pins.append(FilePin(info.filename, sha, size))
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{wheel}: not a readable wheel: {exc}") from None
    if not pins:
        raise InputError(f"{wheel}: contains no llama_cpp/lib native library")
    return tuple(sorted(pins, key=lambda p: p.path))


def add_ollama_tarball(bundle: Path, tarball: Path, version: str) -> EnginePin:
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z.+_-]*", version):
        raise InputError(f"invalid engine version {version!r}")
    if not tarball.name.endswith((".tar.zst", ".tgz", ".tar.gz")):
        raise InputError(f"{tarball}: expected ollama-linux-<arch>.tar.zst or .tgz")
    binaries = tarball_binaries(tarball)
    rel = Path("engines", "ollama", version, tarball.name)
    copied = _place(tarball, bundle / rel)
    artifact = FilePin(rel.as_posix(), copied[0], copied[1])
    return EnginePin("ollama", version, "tarball", (artifact,), binaries)


def add_llamacpp_wheelhouse(
    bundle: Path, wheelhouse: Path, build: EngineBuild | None = None
) -> EnginePin:
    wheels = sorted(wheelhouse.glob("*.whl"))
    engine_wheels = [w for w in wheels if LLAMACPP_WHEEL.match(w.name)]
    if len(engine_wheels) != 1:
        raise InputError(
            f"{wheelhouse}: expected exactly one llama_cpp_python wheel, found {len(engine_wheels)}"
        )
    match = LLAMACPP_WHEEL.match(engine_wheels[0].name)
    assert match is not None
    binaries = wheel_binaries(engine_wheels[0])
    artifacts = []
    for wheel in wheels:
        rel = Path("engines", "llamacpp", "wheelhouse", wheel.name)
        sha, size = _place(wheel, bundle / rel)
        artifacts.append(FilePin(rel.as_posix(), sha, size))
    return EnginePin("llamacpp", match.group(1), "wheelhouse", tuple(artifacts), binaries, build)


def add_wheels(bundle: Path, wheelhouse: Path, subdir: str) -> tuple[FilePin, ...]:
    wheels = sorted(wheelhouse.glob("*.whl"))
    if not wheels:
        raise InputError(f"{wheelhouse}: no .whl files")
    pins = []
    for wheel in wheels:
        rel = Path(subdir, wheel.name)
        sha, size = _place(wheel, bundle / rel)
        pins.append(FilePin(rel.as_posix(), sha, size))
    return tuple(pins)


def _place(source: Path, dest: Path) -> tuple[str, int]:
    """Copy into the bundle unless it already is that file; return its sha256 and size."""
    if source.resolve() == dest.resolve():
        result = sha256_file(dest)
        if result.sha256 is None:
            raise InputError(f"cannot read {dest}: {result.error}")
        return result.sha256, result.size
    copied = copy_hashed(source, dest)
    assert copied.sha256 is not None
    return copied.sha256, copied.size


@dataclass(frozen=True)
class BinaryCheck:
    path: str  # the file on this machine
    pinned_path: str | None  # the lock's path it was matched with; None: not pinned
    sha256: str | None
    pinned_sha256: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.sha256 == self.pinned_sha256


@dataclass(frozen=True)
class BuildFacts:
    """What the pinned engine build needs from this machine, and whether it has it."""

    variant: str
    cpu_baseline: tuple[str, ...]
    cpu_missing: tuple[str, ...] | None  # baseline flags this CPU lacks; None: flags unread
    cuda_version: str | None = None
    cuda_architectures: tuple[str, ...] = ()


@dataclass(frozen=True)
class EngineCheck:
    name: str
    version: str | None  # the pinned version
    files: tuple[BinaryCheck, ...]
    error: str | None = None  # could not be evaluated (nothing mapped, no pid …)
    build: BuildFacts | None = None  # None: the pin carries no build record

    @property
    def status(self) -> str:
        if self.error:
            return "unreadable"
        return "ok" if self.files and all(f.ok for f in self.files) else "failed"


def _check_file(path: Path, pin: FilePin | None) -> BinaryCheck:
    result = sha256_file(path)
    if result.sha256 is None:
        return BinaryCheck(
            str(path),
            pin.path if pin else None,
            None,
            pin.sha256 if pin else None,
            f"cannot read: {result.error}",
        )
    return BinaryCheck(
        str(path), pin.path if pin else None, result.sha256, pin.sha256 if pin else None
    )


def _install_root(exe: Path) -> Path:
    """The prefix the tarball was unpacked into: bin/ollama's grandparent."""
    return exe.resolve().parent.parent


def _tree_files(root: Path, pin: EnginePin) -> list[BinaryCheck]:
    """Every pinned lib/ollama file hashed, and every file found there that is not pinned."""
    pinned = {b.path: b for b in pin.binaries if b.path.startswith(OLLAMA_LIBDIR)}
    libdir = root / OLLAMA_LIBDIR
    found = set()
    if libdir.is_dir():
        found = {
            p.relative_to(root).as_posix()
            for p in libdir.rglob("*")
            if p.is_file() and not p.is_symlink()
        }
    checks = [_check_file(root / rel, pinned[rel]) for rel in sorted(pinned)]
    checks += [_check_file(root / rel, None) for rel in sorted(found - set(pinned))]
    return checks


def _tree_pids(pid: int) -> list[int]:
    try:
        return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:
        return [pid]


def _mapped_unpinned(root: Path, pin: EnginePin, pid: int) -> list[BinaryCheck]:
    """Libraries the engine or a runner mapped from lib/ollama/ that no pin names, or that
    are mapped from outside the tree they should come from."""
    pinned = {b.path for b in pin.binaries}
    libdir = (root / OLLAMA_LIBDIR).as_posix()
    checks = []
    for each in _tree_pids(pid):
        try:
            mapped = mapped_files(each)
        except OSError as exc:
            checks.append(
                BinaryCheck(f"/proc/{each}/maps", None, None, None, f"cannot read: {exc}")
            )
            continue
        for path in mapped:
            if path.as_posix().startswith(libdir):
                if path.relative_to(root).as_posix() not in pinned:
                    checks.append(_check_file(path, None))
            elif path.name.startswith(_ENGINE_LIBRARIES):
                checks.append(_check_file(path, None))  # ggml from outside the pinned tree
    return checks


def check_ollama(pin: EnginePin, exe_path: str | None, pid: int | None = None) -> EngineCheck:
    binary = next((b for b in pin.binaries if b.path == OLLAMA_BINARY), None)
    if exe_path is None:
        return EngineCheck(pin.name, pin.version, (), "the engine's executable path is unknown")
    files = [_check_file(Path(exe_path), binary)]
    if any(b.path.startswith(OLLAMA_LIBDIR) for b in pin.binaries):
        root = _install_root(Path(exe_path))
        files += _tree_files(root, pin)
        if pid is not None:
            files += _mapped_unpinned(root, pin, pid)
    return EngineCheck(pin.name, pin.version, tuple(files))


def mapped_files(pid: int) -> list[Path]:
    """Files mapped into a process (its executable and shared libraries); needs ptrace access."""
    paths: dict[str, None] = {}
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].startswith("/"):
                paths[fields[5].rstrip("\n").removesuffix(" (deleted)")] = None
    return [Path(p) for p in paths]


def check_llamacpp(pin: EnginePin, pid: int | None) -> EngineCheck:
    if pid is None:
        return EngineCheck(
            pin.name, pin.version, (), "the engine is not running: no pid to inspect"
        )
    try:
        libraries = [p for p in mapped_files(pid) if "/llama_cpp/lib/" in p.as_posix()]
    except OSError as exc:
        return EngineCheck(pin.name, pin.version, (), f"cannot read /proc/{pid}/maps: {exc}")
    if not libraries:
        return EngineCheck(pin.name, pin.version, (), f"pid {pid} maps no llama_cpp/lib library")
    by_suffix = {b.path: b for b in pin.binaries}
    files = []
    for library in sorted(libraries):
        rel = "llama_cpp/lib/" + library.name
        files.append(_check_file(library, by_suffix.get(rel)))
    return EngineCheck(pin.name, pin.version, tuple(files))


def _check_ollama(pin: EnginePin, exe_path: str | None, pid: int | None) -> EngineCheck:
    return check_ollama(pin, exe_path, pid)


def _check_llamacpp(pin: EnginePin, _exe_path: str | None, pid: int | None) -> EngineCheck:
    return check_llamacpp(pin, pid)


# How each engine's pinned binaries are found on a running machine: Ollama's executable,
# or the native libraries llama.cpp's server has mapped.
CHECKERS: Mapping[EngineKind, Callable[[EnginePin, str | None, int | None], EngineCheck]] = {
    EngineKind.OLLAMA: _check_ollama,
    EngineKind.LLAMACPP: _check_llamacpp,
}


def build_facts(pin: EnginePin, cpu_flags: frozenset[str] | None) -> BuildFacts | None:
    """The pin's build record beside this CPU's flags (None: a pin without a record)."""
    build = pin.build
    if build is None:
        return None
    missing = None
    if cpu_flags is not None:
        missing = tuple(sorted(f for f in build.cpu_baseline if f not in cpu_flags))
    cuda = build.cuda
    return BuildFacts(
        build.variant,
        build.cpu_baseline,
        missing,
        cuda.version if cuda else None,
        cuda.architectures if cuda else (),
    )


def check_engine(
    kind: EngineKind, pin: EnginePin, exe_path: str | None, pid: int | None
) -> EngineCheck:
    """The running engine's binaries against its pin (`exe_path` or `pid`, as it needs)."""
    return CHECKERS[kind](pin, exe_path, pid)

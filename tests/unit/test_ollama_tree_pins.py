"""The whole Ollama tree pinned from the release tarball (bin/ollama and lib/ollama/**), and
checked on an installed prefix: every pinned file hashed, unpinned files and libraries a
running process mapped from outside the pins fail. Uses the stand-in release tarball (real
ELF executable and shared libraries) and real processes that map them."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditor.models import pins
from auditor.models.lockfile import EnginePin
from tests.standins import ollama_release_standin

VERSION = "0.33.0"


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> tuple[EnginePin, Path]:
    """The tarball's pin, and a prefix it was unpacked into as install.sh does."""
    tmp = tmp_path_factory.mktemp("release")
    built = ollama_release_standin.build_release(tmp / "dist", VERSION, compression="tgz")
    pin = pins.add_ollama_tarball(tmp / "bundle", built.path, VERSION)
    prefix = tmp / "prefix"
    with tarfile.open(built.path) as archive:
        archive.extractall(prefix, filter="data")
    return pin, prefix


@contextlib.contextmanager
def mapping(library: Path) -> Iterator[int]:
    """A real process that has `library` mapped; yields its pid."""
    code = (
        "import ctypes, sys, time; ctypes.CDLL(sys.argv[1]); print('ok', flush=True); "
        "time.sleep(120)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(library)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ok\n"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_the_tarball_pins_bin_and_every_lib_file(release: tuple[EnginePin, Path]) -> None:
    pin, _ = release
    paths = [b.path for b in pin.binaries]
    assert "bin/ollama" in paths
    assert {"lib/ollama/libggml-base.so", "lib/ollama/libggml-cpu.so"} <= set(paths)
    assert "lib/ollama/llama-server" in paths and "lib/ollama/ollama_standin.py" in paths


def test_installed_tree_matches_and_mapped_libraries_pass(release: tuple[EnginePin, Path]) -> None:
    pin, prefix = release
    with mapping(prefix / "lib/ollama/libggml-cpu.so") as pid:
        checked = pins.check_ollama(pin, str(prefix / "bin/ollama"), pid)
    assert checked.status == "ok", [f for f in checked.files if not f.ok]
    assert len(checked.files) == len(pin.binaries)


def test_altered_missing_and_unpinned_files_fail(
    release: tuple[EnginePin, Path], tmp_path: Path
) -> None:
    pin, prefix = release
    library = prefix / "lib/ollama/libggml-base.so"
    original = library.read_bytes()
    try:
        library.write_bytes(original + b"\0")
        failed = pins.check_ollama(pin, str(prefix / "bin/ollama"))
        assert failed.status == "failed"
        assert [f.pinned_path for f in failed.files if not f.ok] == ["lib/ollama/libggml-base.so"]
        library.unlink()
        missing = pins.check_ollama(pin, str(prefix / "bin/ollama"))
        assert any(f.error and "cannot read" in f.error for f in missing.files)
    finally:
        library.write_bytes(original)
    extra = prefix / "lib/ollama/cuda_v13/libggml-cuda.so"
    extra.parent.mkdir()
    extra.write_bytes(original)
    try:
        unpinned = pins.check_ollama(pin, str(prefix / "bin/ollama"))
        assert [f.path for f in unpinned.files if not f.ok] == [str(extra)]
    finally:
        extra.unlink()
        extra.parent.rmdir()


def test_a_ggml_library_mapped_from_outside_the_tree_fails(
    release: tuple[EnginePin, Path], tmp_path: Path
) -> None:
    pin, prefix = release
    outside = tmp_path / "libggml-cpu.so"
    outside.write_bytes((prefix / "lib/ollama/libggml-cpu.so").read_bytes())
    with mapping(outside) as pid:
        checked = pins.check_ollama(pin, str(prefix / "bin/ollama"), pid)
    assert checked.status == "failed"
    assert [f.path for f in checked.files if not f.ok] == [str(outside)]

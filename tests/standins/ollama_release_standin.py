"""Builds a STAND-IN for Ollama's Linux release tarball, for tests only.

The real Ollama binary cannot be obtained on the project's machines, so the role tests install
this instead. It has the real release's layout (``./bin/ollama`` and ``./lib/ollama/``)
and the real file names (``ollama-linux-amd64.tar.zst`` / ``.tgz``), so the role runs exactly as
it would on a real release. ``bin/ollama`` is a small compiled launcher
(``ollama_standin_launcher.c``) that runs the Ollama-protocol stand-in server
(``tests/standins/ollama_standin.py``, shipped inside as ``lib/ollama/``) with the target's
``python3``; being a real executable, it is what /proc/PID/exe of the service names, so the
auditor's binary pin (OG-INT-01) is checked as on a real install. ``lib/ollama/`` also holds
the runner (``llama-server``, started by the server as Ollama >= 0.30 starts its runners) and
two real shared libraries (``libggml_standin.c``) that the server and its runners map, so the
pins of the whole tree and the mapped-library check are exercised too. Every file says it is
a stand-in.

Archives are reproducible: the same version and server file always give the same sha256, so a
test bundle built twice pins the same digest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

STANDIN_SERVER = Path(__file__).with_name("ollama_standin.py")
STANDIN_RUNNER = Path(__file__).with_name("llama-server")
LAUNCHER = Path(__file__).with_name("ollama_standin_launcher.c")
LIBRARY_SOURCE = Path(__file__).with_name("libggml_standin.c")
# shared libraries the stand-in server and its runners map, as Ollama maps ggml's
LIBRARIES = ("libggml-base.so", "libggml-cpu.so")
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]*")
ARCHIVE_NAMES = {"zst": "ollama-linux-amd64.tar.zst", "tgz": "ollama-linux-amd64.tgz"}
# Fixed metadata keeps the archive bytes identical between builds.
_MTIME = 1_700_000_000

Compression = Literal["zst", "tgz"]


@dataclass(frozen=True)
class StandinRelease:
    path: Path
    version: str
    sha256: str

    @property
    def archive_name(self) -> str:
        return self.path.name


def launcher_binary(version: str) -> bytes:
    """bin/ollama: the stand-in launcher (ollama_standin_launcher.c) built for ``version``.

    A real executable, so /proc/PID/exe of the service is the pinned bin/ollama, as with the
    real release. Built with the controller's C compiler (build-essential, a Makefile
    prerequisite), stripped, so the same version gives the same bytes.
    """
    if not _VERSION.fullmatch(version):
        raise ValueError(f"stand-in version {version!r} is not a plain version string")
    with tempfile.TemporaryDirectory(prefix="ollama-standin-") as tmp:
        out = Path(tmp) / "ollama"
        subprocess.run(
            ["cc", "-O2", "-s", f'-DSTANDIN_VERSION="{version}"', "-o", str(out), LAUNCHER.name],
            cwd=LAUNCHER.parent, capture_output=True, check=True,
        )  # fmt: skip
        return out.read_bytes()


def shared_library(name: str) -> bytes:
    """lib/ollama/<name>: a real ELF shared library (libggml_standin.c), stripped, so the same
    name gives the same bytes."""
    with tempfile.TemporaryDirectory(prefix="ollama-standin-lib-") as tmp:
        out = Path(tmp) / name
        subprocess.run(
            ["cc", "-O2", "-s", "-shared", "-fPIC", f'-DSTANDIN_LIBRARY="{name}"',
             "-o", str(out), LIBRARY_SOURCE.name],
            cwd=LIBRARY_SOURCE.parent, capture_output=True, check=True,
        )  # fmt: skip
        return out.read_bytes()


def _readme(version: str) -> str:
    return (
        f"offgrid TEST STAND-IN for an Ollama {version} release tarball.\n"
        "Built by tests/standins/ollama_release_standin.py; contains no Ollama code.\n"
    )


def _add(tar: tarfile.TarFile, name: str, data: bytes | None, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = _MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = mode
    if data is None:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        return
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def release_tar_bytes(version: str, server: Path = STANDIN_SERVER) -> bytes:
    """The uncompressed tar: ./bin/ollama and ./lib/ollama/ with the stand-in server, its
    llama-server runner, the shared libraries both map, and a README."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for directory in ("./bin", "./lib", "./lib/ollama"):
            _add(tar, directory, None, 0o755)
        _add(tar, "./bin/ollama", launcher_binary(version), 0o755)
        _add(tar, "./lib/ollama/ollama_standin.py", server.read_bytes(), 0o644)
        _add(tar, "./lib/ollama/llama-server", STANDIN_RUNNER.read_bytes(), 0o755)
        for library in LIBRARIES:
            _add(tar, f"./lib/ollama/{library}", shared_library(library), 0o755)
        _add(tar, "./lib/ollama/STANDIN-NOT-OLLAMA.txt", _readme(version).encode(), 0o644)
    return buffer.getvalue()


def compress(tar_bytes: bytes, compression: Compression) -> bytes:
    if compression == "tgz":
        return gzip.compress(tar_bytes, mtime=_MTIME)
    # Same tool and format as the real release; the zstd CLI is a Makefile prerequisite.
    result = subprocess.run(
        ["zstd", "-q", "-c", "-19"], input=tar_bytes, capture_output=True, check=True
    )
    return result.stdout


def build_release(
    dest_dir: Path,
    version: str,
    compression: Compression = "zst",
    server: Path = STANDIN_SERVER,
) -> StandinRelease:
    """Write the stand-in tarball into ``dest_dir`` under the real release's file name."""
    if not server.is_file():
        raise FileNotFoundError(f"the Ollama stand-in server {server} does not exist")
    data = compress(release_tar_bytes(version, server), compression)
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / ARCHIVE_NAMES[compression]
    path.write_bytes(data)
    return StandinRelease(path=path, version=version, sha256=hashlib.sha256(data).hexdigest())


def build_into_bundle(
    bundle_dir: Path,
    version: str,
    compression: Compression = "zst",
    server: Path = STANDIN_SERVER,
) -> StandinRelease:
    """Place the stand-in where the bundle contract puts it: engines/ollama/<version>/."""
    return build_release(bundle_dir / "engines" / "ollama" / version, version, compression, server)

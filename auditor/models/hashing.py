"""SHA-256 of many files in parallel.

hashlib's OpenSSL SHA-256 (SHA-NI where the CPU has it) releases the GIL for updates larger
than 2 KiB, so plain threads reading multi-MiB chunks keep every core busy without the
cost of processes; one file is still one stream, hashed at single-core speed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

CHUNK = 4 * 1024 * 1024

Progress = Callable[[int], None]  # called with the number of bytes just hashed


@dataclass(frozen=True)
class FileHash:
    path: Path
    sha256: str | None  # lowercase hex; None when the file could not be read
    size: int
    error: str | None = None


def sha256_file(path: Path, progress: Progress | None = None) -> FileHash:
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    size = 0
    try:
        with path.open("rb", buffering=0) as handle:
            while count := handle.readinto(view):
                digest.update(view[:count])
                size += count
                if progress:
                    progress(count)
    except OSError as exc:
        return FileHash(path, None, size, exc.strerror or str(exc))
    return FileHash(path, digest.hexdigest(), size)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def hash_files(
    paths: Iterable[Path], workers: int | None = None, progress: Progress | None = None
) -> dict[Path, FileHash]:
    """Hash every path; biggest files first so one large blob does not finish last alone."""
    unique = list(dict.fromkeys(paths))
    unique.sort(key=_size_or_zero, reverse=True)
    if not unique:
        return {}
    count = min(workers or default_workers(), len(unique))
    if count == 1:
        return {p: sha256_file(p, progress) for p in unique}
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="sha256") as pool:
        results = pool.map(lambda p: sha256_file(p, progress), unique)
        return {r.path: r for r in results}


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0

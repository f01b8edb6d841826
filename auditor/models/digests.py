"""Digests for a verification run: from the authenticated cache when it may be trusted,
otherwise hashed in parallel; counts what came from where for the report."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from auditor.models.cache import HashCache, ModeChoice
from auditor.models.hashing import FileHash, Progress, hash_files


@dataclass(frozen=True)
class DigestStats:
    mode: str
    mode_reason: str
    blobs_hashed: int
    blobs_from_cache: int
    bytes_hashed: int
    duration_s: float


class DigestSource:
    def __init__(
        self,
        cache: HashCache | None,
        choice: ModeChoice,
        workers: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        self._cache = cache
        self.choice = choice
        self._workers = workers
        self._progress = progress
        self._started = time.perf_counter()
        self.blobs_hashed = self.blobs_from_cache = self.bytes_hashed = 0

    def digests(self, paths: Iterable[Path]) -> dict[Path, FileHash]:
        """sha256 for every path; files that vanish or cannot be read carry an error."""
        results: dict[Path, FileHash] = {}
        before: dict[Path, os.stat_result] = {}
        for path in dict.fromkeys(paths):
            try:
                st = path.stat()
            except OSError as exc:
                results[path] = FileHash(path, None, 0, exc.strerror)
                continue
            cached = self._cached(path, st)
            if cached is not None:
                results[path] = FileHash(path, cached, st.st_size)
                self.blobs_from_cache += 1
            else:
                before[path] = st
        hashed = hash_files(before, self._workers, self._progress)
        for path, result in hashed.items():
            results[path] = result
            self.blobs_hashed += 1
            self.bytes_hashed += result.size
            self._remember(path, before[path], result)
        return results

    def _cached(self, path: Path, st: os.stat_result) -> str | None:
        if self._cache is None or self.choice.mode != "incremental":
            return None
        return self._cache.lookup(path, st)

    def _remember(self, path: Path, before: os.stat_result, result: FileHash) -> None:
        if self._cache is None or result.sha256 is None:
            return
        try:
            after = path.stat()
        except OSError:
            self._cache.forget(path)
            return
        if (before.st_ino, before.st_size, before.st_mtime_ns, before.st_ctime_ns) != (
            after.st_ino,
            after.st_size,
            after.st_mtime_ns,
            after.st_ctime_ns,
        ):
            self._cache.forget(path)  # changed while being hashed: trust nothing
            return
        self._cache.record(path, after, result.sha256)

    def finish(self) -> DigestStats:
        if self._cache is not None:
            self._cache.save(full_run_completed=self.choice.mode == "full")
        return DigestStats(
            self.choice.mode,
            self.choice.reason,
            self.blobs_hashed,
            self.blobs_from_cache,
            self.bytes_hashed,
            round(time.perf_counter() - self._started, 3),
        )


def open_source(
    state_dir: Path | None,
    full: bool,
    max_age_days: float,
    workers: int | None = None,
    progress: Progress | None = None,
) -> DigestSource:
    """A digest source with the cache in state_dir (None: no cache, always full)."""
    if state_dir is None:
        return DigestSource(None, ModeChoice("full", "no hash cache configured"), workers, progress)
    cache = HashCache(state_dir)
    return DigestSource(cache, cache.choose_mode(full, max_age_days), workers, progress)

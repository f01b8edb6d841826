"""The verified-hash cache: authentic entries only, stat changes invalidate, modes chosen right."""

import json
import os
import time
from pathlib import Path

import pytest

from auditor.models.cache import CACHE_FILE, KEY_FILE, HashCache
from auditor.models.digests import open_source


def _old_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def blob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # No racy window, so a file just written may be cached (test_recently_changed… covers it).
    monkeypatch.setattr("auditor.models.cache.RACY_WINDOW_NS", 0)
    return _old_file(tmp_path / "blob", b"x" * 4096)


def test_key_is_created_private(tmp_path: Path) -> None:
    HashCache(tmp_path / "state")
    key = tmp_path / "state" / KEY_FILE
    assert key.stat().st_mode & 0o777 == 0o600
    assert len(key.read_bytes()) == 32


def test_entry_is_trusted_only_while_stat_is_unchanged(tmp_path: Path, blob: Path) -> None:
    cache = HashCache(tmp_path / "state")
    cache.record(blob, blob.stat(), "d" * 64)
    assert cache.lookup(blob, blob.stat()) == "d" * 64
    before = blob.stat()
    time.sleep(0.05)  # past the file system's timestamp granularity (a jiffy)
    with blob.open("r+b") as handle:
        handle.write(b"y")
    os.utime(blob, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime restored …
    after = blob.stat()
    assert after.st_mtime_ns == before.st_mtime_ns and after.st_size == before.st_size
    assert cache.lookup(blob, after) is None  # … but ctime moved


def test_saved_entries_survive_reload_and_forgeries_do_not(tmp_path: Path, blob: Path) -> None:
    state = tmp_path / "state"
    cache = HashCache(state)
    cache.record(blob, blob.stat(), "d" * 64)
    cache.save(full_run_completed=True)
    assert HashCache(state).lookup(blob, blob.stat()) == "d" * 64
    document = json.loads((state / CACHE_FILE).read_text())
    document["entries"][str(blob)]["digest"] = "e" * 64  # vouch for other content
    (state / CACHE_FILE).write_text(json.dumps(document))
    forged = HashCache(state)
    assert forged.lookup(blob, blob.stat()) is None
    assert forged.rejected == 1


def test_a_readable_key_is_not_trusted(tmp_path: Path) -> None:
    state = tmp_path / "state"
    HashCache(state)
    (state / KEY_FILE).chmod(0o644)
    cache = HashCache(state)
    assert not cache.usable
    assert cache.choose_mode(False, 7).mode == "full"
    assert "readable" in cache.choose_mode(False, 7).reason


def test_recently_changed_files_are_not_cached(tmp_path: Path) -> None:
    cache = HashCache(tmp_path / "state")
    fresh = _old_file(tmp_path / "fresh", b"z")
    cache.record(fresh, fresh.stat(), "f" * 64)
    assert cache.lookup(fresh, fresh.stat()) is None


def test_mode_follows_the_schedule(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cache = HashCache(state)
    assert cache.choose_mode(False, 7).mode == "full"  # no full run recorded yet
    cache.save(full_run_completed=True)
    cache = HashCache(state)
    assert cache.choose_mode(False, 7).mode == "incremental"
    assert cache.choose_mode(True, 7).mode == "full"
    assert cache.choose_mode(False, 0.0).mode == "full"  # schedule says: every run


def test_digest_source_counts_cache_hits(tmp_path: Path, blob: Path) -> None:
    state = tmp_path / "state"
    first = open_source(state, full=False, max_age_days=7)
    assert first.digests([blob])[blob].sha256 is not None
    assert first.finish().blobs_hashed == 1
    second = open_source(state, full=False, max_age_days=7)
    second.digests([blob])
    stats = second.finish()
    assert (stats.mode, stats.blobs_from_cache, stats.blobs_hashed) == ("incremental", 1, 0)

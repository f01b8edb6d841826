"""The verified-hash cache behind the incremental integrity mode.

A blob's cached digest is trusted only while the file's (device, inode, size, mtime_ns,
ctime_ns) are exactly what they were when it was last hashed AND the cache entry carries a
valid HMAC made with a key only root (the auditor) can read. Editing the cache file cannot
vouch for a changed blob, and restoring a blob's mtime with touch/utime does not help
either: ctime cannot be set from user space, any write or utime call moves it. A file
changed within RACY_WINDOW_NS of being hashed is not cached (git's "racy clean" problem:
a later write in the same timestamp tick would leave the stat unchanged).

The mode is chosen per run: "full" re-hashes everything (on request, when there is no
trustworthy cache yet, or when the last full run is older than max_age_days); otherwise
"incremental" re-hashes only blobs whose stat or entry does not match.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from auditor import safeio
from auditor.errors import InputError
from auditor.fsutil import atomic_write_text
from auditor.keyfile import load_key

DEFAULT_STATE_DIR = Path("/var/lib/offgrid")
KEY_FILE = "cache.key"
CACHE_FILE = "hash-cache.json"
CACHE_VERSION = 1
DEFAULT_MAX_AGE_DAYS = 7.0
RACY_WINDOW_NS = 1_000_000_000


@dataclass(frozen=True)
class StatKey:
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> StatKey:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class ModeChoice:
    mode: str  # "full" | "incremental"
    reason: str


def _load_key(state_dir: Path) -> tuple[bytes | None, str]:
    """The HMAC key, created 0600 on first use; None (and why) when it cannot be trusted."""
    return load_key(state_dir / KEY_FILE, "cache key", create=True)


class HashCache:
    """Authenticated stat -> digest entries, loaded once per run and saved at the end."""

    def __init__(self, state_dir: Path = DEFAULT_STATE_DIR) -> None:
        self.path = state_dir / CACHE_FILE
        self._key, self.unusable_reason = _load_key(state_dir)
        self._entries: dict[str, dict[str, object]] = {}
        self._last_full: str | None = None
        self.rejected = 0  # entries whose HMAC did not verify (tampering, or a new key)
        if self._key is not None:
            self._read()

    @property
    def usable(self) -> bool:
        return self._key is not None

    def _mac(self, fields: list[object]) -> str:
        assert self._key is not None
        message = json.dumps(fields, separators=(",", ":")).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    @staticmethod
    def _fields(path: str, entry: dict[str, object]) -> list[object]:
        keys = ("digest", "dev", "ino", "size", "mtime_ns", "ctime_ns")
        return [CACHE_VERSION, path, *(entry.get(k) for k in keys)]

    def _read(self) -> None:
        try:
            raw = safeio.load_json(self.path, safeio.REPORT_LIMIT, follow=False)
        except InputError:
            return  # no cache yet, or unreadable: everything is hashed and it is rewritten
        if not isinstance(raw, dict) or raw.get("version") != CACHE_VERSION:
            return
        entries = raw.get("entries")
        for path, entry in entries.items() if isinstance(entries, dict) else ():
            if isinstance(entry, dict) and hmac.compare_digest(
                str(entry.get("mac", "")), self._mac(self._fields(path, entry))
            ):
                self._entries[path] = entry
            else:
                self.rejected += 1
        last_full = raw.get("last_full")
        if isinstance(last_full, dict) and hmac.compare_digest(
            str(last_full.get("mac", "")), self._mac(["last_full", last_full.get("at")])
        ):
            self._last_full = str(last_full.get("at"))

    def choose_mode(self, full_requested: bool, max_age_days: float) -> ModeChoice:
        if full_requested:
            return ModeChoice("full", "full re-hash requested")
        if not self.usable:
            return ModeChoice("full", self.unusable_reason)
        if self._last_full is None:
            return ModeChoice("full", "no authentic record of an earlier full re-hash")
        age_days = (time.time() - datetime.fromisoformat(self._last_full).timestamp()) / 86400
        if age_days > max_age_days:
            return ModeChoice(
                "full",
                f"last full re-hash {age_days:.1f} days ago "
                f"(schedule: every {max_age_days:g} days)",
            )
        return ModeChoice("incremental", f"last full re-hash at {self._last_full}")

    def lookup(self, path: Path, st: os.stat_result) -> str | None:
        """The cached hex digest if the entry is authentic and the stat is unchanged."""
        entry = self._entries.get(str(path))
        if entry is None:
            return None
        key = StatKey.of(st)
        if [entry.get(k) for k in ("dev", "ino", "size", "mtime_ns", "ctime_ns")] != [
            key.dev,
            key.ino,
            key.size,
            key.mtime_ns,
            key.ctime_ns,
        ]:
            return None
        digest = entry.get("digest")
        return digest if isinstance(digest, str) else None

    def record(self, path: Path, st: os.stat_result, digest: str) -> None:
        if not self.usable:
            return
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_WINDOW_NS:
            self._entries.pop(str(path), None)
            return
        key = StatKey.of(st)
        entry: dict[str, object] = {
            "digest": digest,
            "dev": key.dev,
            "ino": key.ino,
            "size": key.size,
            "mtime_ns": key.mtime_ns,
            "ctime_ns": key.ctime_ns,
        }
        entry["mac"] = self._mac(self._fields(str(path), entry))
        self._entries[str(path)] = entry

    def forget(self, path: Path) -> None:
        self._entries.pop(str(path), None)

    def save(self, full_run_completed: bool) -> None:
        """Write the cache atomically (0600); drop entries whose file is gone."""
        if not self.usable:
            return
        if full_run_completed:
            self._last_full = datetime.now(UTC).isoformat(timespec="seconds")
        entries = {p: e for p, e in self._entries.items() if os.path.lexists(p)}
        document: dict[str, object] = {"version": CACHE_VERSION, "entries": entries}
        if self._last_full is not None:
            document["last_full"] = {
                "at": self._last_full,
                "mac": self._mac(["last_full", self._last_full]),
            }
        # a read-only or missing state dir costs speed, not safety
        with contextlib.suppress(OSError, InputError):
            atomic_write_text(self.path, json.dumps(document, indent=1) + "\n", mode=0o600)

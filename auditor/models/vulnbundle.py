"""The known-vulnerability table in a bundle: put one in (`bundle add-vulns`), pick the one
to use at audit time (the bundle's when it is newer than the wheel's and matches its pin)."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from auditor import safeio
from auditor.errors import InputError
from auditor.fsutil import atomic_write_bytes
from auditor.models import lockfile
from auditor.models.lockfile import FilePin, VulnsPin
from auditor.models.vulndb import (
    BUNDLE_VULNS_DIR,
    KnownVulnerability,
    VulnTable,
    check_date,
    decode_entry,
    entry_files,
    load_entries,
    merged,
    wheel_table,
)


@dataclass(frozen=True)
class VulnSelection:
    """Which table the audit uses, and what it compared to choose it."""

    table: VulnTable  # in use: the newer table plus the older one's entries it lacks
    wheel_date: str
    bundle_date: str | None  # None: the lock pins no table (or no lock is configured)
    bundle_source: str | None
    bundle_problem: str | None  # the pinned table is missing, altered or unreadable: not used
    kept_from_older: int  # entries of the older table the newer one does not list


def _safe_name(entry: KnownVulnerability) -> str:
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in entry.id)
    return f"{BUNDLE_VULNS_DIR}/{name}.json"


def add_vulns(bundle: Path, source_path: Path, source: str, day: str | None) -> VulnsPin:
    """Validate every OSV entry, replace the bundle's vulns/ with them, return the pin.

    The directory is built beside the old one and swapped in, so a failure leaves the old
    table and its pin as they were."""
    files = entry_files(source_path)
    loaded = load_entries(files)
    newest = max(entry.modified for _, entry in loaded)[:10]
    when = check_date(day, "--date") if day else check_date(newest, "newest 'modified'")
    if datetime.fromisoformat(when).date() > datetime.now(UTC).date():
        raise InputError(f"--date {when} is in the future")
    staging = Path(tempfile.mkdtemp(prefix=".vulns-", dir=bundle))
    try:
        pins = []
        for data, entry in loaded:
            rel = _safe_name(entry)
            atomic_write_bytes(staging / Path(rel).name, data, mode=0o644)
            pins.append(FilePin(rel, hashlib.sha256(data).hexdigest(), len(data)))
        target = bundle / BUNDLE_VULNS_DIR
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            raise InputError(f"{target} exists and is not a directory")
        old = bundle / f".vulns-old-{staging.name}"
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return VulnsPin(when, source, tuple(sorted(pins, key=lambda p: p.path)))


def _pinned_entries(root: Path, pin: VulnsPin) -> tuple[KnownVulnerability, ...]:
    """The pinned files, each re-hashed; InputError on the first that differs from its pin."""
    entries = []
    for file in pin.files:
        data = safeio.read_bytes(root / file.path, max(file.size, 1), what="pinned OSV entry")
        if len(data) != file.size or hashlib.sha256(data).hexdigest() != file.sha256:
            raise InputError(f"{file.path} does not match its pin in the lock")
        entries.append(decode_entry(data, file.path))
    return tuple(entries)


def select(lock_path: Path | None) -> VulnSelection:
    """The wheel's table, or the bundle's when the lock pins a newer one that verifies."""
    wheel = wheel_table()
    if lock_path is None:
        return VulnSelection(wheel, wheel.date, None, None, None, 0)
    try:
        pin = lockfile.load(lock_path).vulns
        if pin is None:
            return VulnSelection(wheel, wheel.date, None, None, None, 0)
        entries = _pinned_entries(lock_path.parent, pin)
    except InputError as exc:
        date = _pinned_date(lock_path)
        return VulnSelection(wheel, wheel.date, date, None, str(exc), 0)
    bundle = VulnTable(pin.date, pin.source, "bundle", entries)
    newer, older = (bundle, wheel) if bundle.date > wheel.date else (wheel, bundle)
    table = merged(newer, older)
    kept = len(table.entries) - len(newer.entries)
    return VulnSelection(table, wheel.date, pin.date, pin.source, None, kept)


def _pinned_date(lock_path: Path) -> str | None:
    try:
        pin = lockfile.load(lock_path).vulns
    except InputError:
        return None
    return pin.date if pin else None

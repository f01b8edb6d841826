"""A tamper-evident history of reports: a hash chain of entries, each HMAC'd, optionally signed.

Layout of a history directory (mode 0700):

    chain.jsonl              one JSON entry per line, append-only
    reports/NNNNNN-<sha>.json the report of entry NNNNNN as canonical JSON (sorted keys, compact)
    signatures/NNNNNN.sig    optional SSH signature (ssh-keygen -Y sign) of the head at entry N
    history.key              the HMAC key (0600, created on first append; see --key)
    .lock                    flock()ed while appending, so two runs cannot interleave

Each entry carries the sha256 of its report's bytes, the hash of the previous entry (64 zeros
for the first) and its own hash over all of that, plus an HMAC of its own hash made with a key
only root can read. Editing a report, editing/deleting/inserting/reordering entries, or forging
an entry without the key breaks the chain at a named entry. Cutting entries off the END leaves a
shorter but consistent chain: only an anchor kept elsewhere (the head hash, `--expect-head`) or
a signature file beyond the end reveals it.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditor.errors import InputError
from auditor.fsutil import atomic_write_bytes
from auditor.keyfile import load_key
from auditor.report.load import read_json
from auditor.report.validate import validate

DEFAULT_HISTORY_DIR = Path("/var/lib/offgrid/history")
CHAIN_FILE = "chain.jsonl"
REPORTS_DIR = "reports"
SIGNATURES_DIR = "signatures"
KEY_FILE = "history.key"
LOCK_FILE = ".lock"
GENESIS = "0" * 64
ENTRY_VERSION = 1
# the fields an entry's hash and HMAC cover, in this order
HASHED_FIELDS = ("v", "seq", "timestamp", "host", "finished_at", "report", "report_sha256", "prev")
_REPORT_NAME = re.compile(r"\A\d{6}-[0-9a-f]{16}\.json\Z")


@dataclass(frozen=True)
class Entry:
    seq: int
    timestamp: str
    host: str
    finished_at: str
    report: str  # file name under reports/
    report_sha256: str
    prev: str
    entry_hash: str
    hmac: str

    def hashed(self) -> dict[str, Any]:
        values = {"v": ENTRY_VERSION, **self.__dict__}
        return {name: values[name] for name in HASHED_FIELDS}

    def to_line(self) -> bytes:
        body = self.hashed() | {"entry_hash": self.entry_hash, "hmac": self.hmac}
        return canonical_json(body) + b"\n"


@dataclass(frozen=True)
class Problem:
    seq: int | None  # the entry it concerns; None for the history as a whole
    message: str

    def describe(self) -> str:
        return f"entry {self.seq}: {self.message}" if self.seq is not None else self.message


@dataclass(frozen=True)
class Verification:
    entries: tuple[Entry, ...]
    problems: tuple[Problem, ...]
    notes: tuple[str, ...]  # what was not checked, and why

    @property
    def head(self) -> Entry | None:
        return self.entries[-1] if self.entries else None


def canonical_json(data: Any) -> bytes:
    """One byte sequence per value: sorted keys, no insignificant whitespace, UTF-8."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry_hash(fields: Mapping[str, Any]) -> str:
    return sha256_hex(canonical_json({name: fields.get(name) for name in HASHED_FIELDS}))


def entry_hmac(key: bytes, digest: str) -> str:
    return hmac.new(key, digest.encode("ascii"), hashlib.sha256).hexdigest()


def key_path_for(directory: Path, key: Path | None) -> Path:
    return key if key is not None else directory / KEY_FILE


# ---- reading -----------------------------------------------------------------------------


def _entry_from(raw: Any) -> Entry:
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    expected = {*HASHED_FIELDS, "entry_hash", "hmac"}
    if set(raw) != expected:
        raise ValueError(f"fields {sorted(set(raw) ^ expected)} missing or unexpected")
    if raw["v"] != ENTRY_VERSION or not isinstance(raw["seq"], int):
        raise ValueError("unsupported version or non-integer seq")
    text_fields = [name for name in expected - {"v", "seq"} if not isinstance(raw[name], str)]
    if text_fields:
        raise ValueError(f"{', '.join(sorted(text_fields))} must be strings")
    return Entry(**{name: raw[name] for name in Entry.__dataclass_fields__})


def read_lines(directory: Path) -> list[bytes]:
    """The chain's lines (a missing chain is an empty history); unreadable: InputError."""
    path = directory / CHAIN_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if not directory.is_dir():
            raise InputError(f"{directory}: no such history directory") from None
        return []
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    return data.splitlines(keepends=True)


def parse_line(line: bytes) -> Entry:
    """One chain line as an Entry; ValueError says why it is not one."""
    if not line.endswith(b"\n"):
        raise ValueError("incomplete line (no newline): a write was cut short or the file edited")
    try:
        raw = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    return _entry_from(raw)


def read_entries(directory: Path) -> list[Entry]:
    """The chain's entries, for list/diff: any unreadable line is an InputError."""
    entries = []
    for number, line in enumerate(read_lines(directory), start=1):
        try:
            entries.append(parse_line(line))
        except ValueError as exc:
            raise InputError(f"{directory / CHAIN_FILE}: line {number}: {exc}") from None
    return entries


def report_path(directory: Path, entry: Entry) -> Path:
    if not _REPORT_NAME.match(entry.report):
        raise InputError(f"entry {entry.seq}: report name {entry.report!r} is not a history file")
    return directory / REPORTS_DIR / entry.report


def find_entry(directory: Path, seq: int) -> Entry:
    for entry in read_entries(directory):
        if entry.seq == seq:
            return entry
    raise InputError(f"{directory}: no entry {seq}")


# ---- appending ---------------------------------------------------------------------------


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held until closed; released by the kernel on a crash
        yield
    finally:
        os.close(fd)


def _prepare_directory(directory: Path) -> None:
    try:
        for path in (directory, directory / REPORTS_DIR, directory / SIGNATURES_DIR):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"history {directory}: cannot create: {exc.strerror}") from exc
    if (directory / CHAIN_FILE).is_symlink():
        raise InputError(f"refusing to append through a symlink: {directory / CHAIN_FILE}")


def _append_line(directory: Path, line: bytes) -> None:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
    fd = os.open(directory / CHAIN_FILE, flags, 0o600)
    try:
        written = os.write(fd, line)
        if written != len(line):
            raise InputError(f"{directory / CHAIN_FILE}: short write ({written}/{len(line)})")
        os.fsync(fd)
    finally:
        os.close(fd)


def _tail(directory: Path) -> Entry | None:
    lines = read_lines(directory)
    if not lines:
        return None
    try:
        return parse_line(lines[-1])
    except ValueError as exc:
        raise InputError(
            f"{directory / CHAIN_FILE}: last line is damaged ({exc}); "
            "run `offgrid report history verify` before appending"
        ) from None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def append(directory: Path, report: Mapping[str, Any], key_path: Path | None = None) -> Entry:
    """Store `report` (the dict of a valid report) and chain it; returns its entry."""
    try:
        data = canonical_json(report)
    except (TypeError, ValueError) as exc:
        raise InputError(f"report is not representable as strict JSON: {exc}") from exc
    # validated as a reader of the stored bytes will see them (tuples are arrays there)
    errors = validate(json.loads(data))
    if errors:
        raise InputError(f"not a valid offgrid report: {errors[0]}")
    _prepare_directory(directory)
    with _locked(directory):
        # under the lock: a second first-ever append must not read a key still being written
        key, why = load_key(key_path_for(directory, key_path), "history key", create=True)
        if key is None:
            raise InputError(why)
        previous = _tail(directory)
        seq = previous.seq + 1 if previous is not None else 1
        digest = sha256_hex(data)
        fields: dict[str, Any] = {
            "v": ENTRY_VERSION,
            "seq": seq,
            "timestamp": _now(),
            "host": str(report["host"]["hostname"]),
            "finished_at": str(report["finished_at"]),
            "report": f"{seq:06d}-{digest[:16]}.json",
            "report_sha256": digest,
            "prev": previous.entry_hash if previous is not None else GENESIS,
        }
        own_hash = entry_hash(fields)
        fields.pop("v")
        entry = Entry(**fields, entry_hash=own_hash, hmac=entry_hmac(key, own_hash))
        # the report is durable before the entry that vouches for it exists
        atomic_write_bytes(directory / REPORTS_DIR / entry.report, data, mode=0o600)
        _append_line(directory, entry.to_line())
    return entry


def append_file(directory: Path, path: Path, key_path: Path | None = None) -> Entry:
    return append(directory, read_json(path), key_path)


# ---- verifying ---------------------------------------------------------------------------


def _check_report(directory: Path, entry: Entry) -> Iterator[Problem]:
    if not _REPORT_NAME.match(entry.report):
        yield Problem(entry.seq, f"report name {entry.report!r} is not a history file")
        return
    try:
        data = (directory / REPORTS_DIR / entry.report).read_bytes()
    except FileNotFoundError:
        yield Problem(entry.seq, f"report {entry.report} is missing")
        return
    except OSError as exc:
        yield Problem(entry.seq, f"report {entry.report} cannot be read: {exc.strerror}")
        return
    actual = sha256_hex(data)
    if actual != entry.report_sha256:
        yield Problem(
            entry.seq,
            f"report {entry.report} was modified (sha256 {actual[:16]}…, "
            f"recorded {entry.report_sha256[:16]}…)",
        )


def _check_entry(entry: Entry, expected_seq: int, prev: str, key: bytes | None) -> list[Problem]:
    problems = []
    if entry.seq != expected_seq:
        problems.append(
            Problem(
                entry.seq,
                f"found where entry {expected_seq} belongs: "
                "entries were deleted, inserted or reordered",
            )
        )
    if entry.prev != prev:
        problems.append(Problem(entry.seq, "chain broken: prev does not match the entry before it"))
    if entry_hash(entry.hashed()) != entry.entry_hash:
        problems.append(Problem(entry.seq, "entry was edited: its hash does not match its fields"))
    elif key is not None and not hmac.compare_digest(entry.hmac, entry_hmac(key, entry.entry_hash)):
        problems.append(Problem(entry.seq, "HMAC does not verify: entry forged or edited"))
    return problems


def _orphans(directory: Path, entries: list[Entry], last_seq: int) -> Iterator[Problem]:
    """Files the chain does not account for: what a deleted tail entry leaves behind."""
    known = {entry.report for entry in entries}
    for path in sorted((directory / REPORTS_DIR).glob("*.json")):
        if path.name not in known:
            yield Problem(None, f"report {path.name} is not in the chain (its entry was removed)")
    for path in sorted((directory / SIGNATURES_DIR).glob("*.sig")):
        stem = path.name.removesuffix(".sig")
        if stem.isdigit() and int(stem) > last_seq:
            yield Problem(
                None, f"signature {path.name} is for entry {int(stem)}, beyond the chain's end"
            )


def verify(
    directory: Path, key_path: Path | None = None, expect_head: str | None = None
) -> Verification:
    """Every way the history differs from what was appended (empty problems: intact)."""
    lines = read_lines(directory)
    key, why = load_key(key_path_for(directory, key_path), "history key", create=False)
    notes = [] if key is not None else [f"HMACs not checked: {why}"]
    entries: list[Entry] = []
    problems: list[Problem] = []
    prev = GENESIS
    for number, line in enumerate(lines, start=1):
        try:
            entry = parse_line(line)
        except ValueError as exc:
            problems.append(Problem(None, f"{CHAIN_FILE} line {number}: {exc}"))
            continue
        problems += _check_entry(entry, number, prev, key)
        problems += _check_report(directory, entry)
        entries.append(entry)
        prev = entry.entry_hash
    problems += _orphans(directory, entries, len(lines))
    if expect_head is not None and expect_head not in {e.entry_hash for e in entries}:
        problems.append(
            Problem(None, f"anchored head {expect_head[:16]}… is not in the chain (truncated?)")
        )
    return Verification(tuple(entries), tuple(problems), tuple(notes))

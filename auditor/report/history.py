"""A tamper-evident history of reports: a hash chain of entries, each HMAC'd, optionally signed.

Layout of a history directory (mode 0700):

    chain.jsonl              one JSON entry per line, append-only
    reports/NNNNNN-<sha>.json the report of entry NNNNNN as canonical JSON (sorted keys, compact)
    signatures/NNNNNN.sig    optional SSH signature (ssh-keygen -Y sign) of the head at entry N
    history.key              the HMAC key (0600, created on first append; see --key)
    .lock                    flock()ed while appending, so two runs cannot interleave
    pending.json             the entry an append is about to add (exists only mid-append)

An append writes pending.json (the complete entry line, HMAC'd), then the report, then the
line, then removes pending.json. A run killed at any point leaves either nothing, or a
pending.json that the next append or `offgrid report history repair` uses to finish the
append (the report is in place: the line is completed) or roll it back (the report was never
written), and records what it did as a repair entry of its own. A torn last line is thus an
interrupted write only when it is a prefix of the pending entry: anything else is tampering.

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
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditor import safeio
from auditor.errors import InputError
from auditor.fsutil import atomic_write_bytes, fsync_directory, remove_stale_in
from auditor.keyfile import load_key
from auditor.report.load import read_json
from auditor.report.validate import validate

DEFAULT_HISTORY_DIR = Path("/var/lib/offgrid/history")
CHAIN_FILE = "chain.jsonl"
REPORTS_DIR = "reports"
SIGNATURES_DIR = "signatures"
KEY_FILE = "history.key"
LOCK_FILE = ".lock"
PENDING_FILE = "pending.json"
REPAIR_SCHEMA = "offgrid-history-repair/1"
REPAIR_RECORD_DONE = "completed the interrupted append of repair entry"
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
    key_problem: str | None = None  # why the HMACs could not be checked (None: they were)
    pending: str | None = None  # an interrupted append that `repair` will finish or undo

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
    if raw["v"] != ENTRY_VERSION or type(raw["seq"]) is not int:
        raise ValueError("unsupported version or non-integer seq")
    text_fields = [name for name in expected - {"v", "seq"} if not isinstance(raw[name], str)]
    if text_fields:
        raise ValueError(f"{', '.join(sorted(text_fields))} must be strings")
    return Entry(**{name: raw[name] for name in Entry.__dataclass_fields__})


def _read_chain(directory: Path) -> bytes:
    path = directory / CHAIN_FILE
    try:
        return safeio.read_bytes(path, safeio.REPORT_LIMIT, follow=False)
    except InputError:
        if not safeio.present(path):
            if not directory.is_dir():
                raise InputError(f"{directory}: no such history directory") from None
            return b""
        raise


def read_lines(directory: Path) -> list[bytes]:
    """The chain's lines (a missing chain is an empty history); unreadable: InputError."""
    return _read_chain(directory).splitlines(keepends=True)


def parse_line(line: bytes) -> Entry:
    """One chain line as an Entry; ValueError says why it is not one."""
    if not line.endswith(b"\n"):
        raise ValueError("incomplete line (no newline): a write was cut short or the file edited")
    try:
        raw = safeio.parse_json(line, "line")
    except InputError as exc:
        raise ValueError(str(exc).removeprefix("line: ")) from None
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


def _read_report(directory: Path, entry: Entry) -> bytes | None:
    """The stored report's bytes; None when it is missing."""
    path = directory / REPORTS_DIR / entry.report
    try:
        return safeio.read_bytes(path, safeio.REPORT_LIMIT, follow=False)
    except InputError:
        if not safeio.present(path):
            return None
        raise


# ---- the pending record of an append -----------------------------------------------------


@dataclass(frozen=True)
class Pending:
    line: bytes
    chain_size: int
    entry: Entry
    data: bytes | None  # the report itself, for repair records (so they are never lost)
    completing: bool = False  # a repair began completing it: record that even if it is done


def _read_pending(directory: Path) -> Pending | None:
    path = directory / PENDING_FILE
    if not safeio.present(path):
        return None
    raw = safeio.load_json(path, follow=False)
    try:
        line = str(raw["line"]).encode("utf-8")
        size, data = raw["chain_size"], raw.get("data")
        if type(size) is not int or size < 0:
            raise ValueError("chain_size is not a size")
        blob = None if data is None else str(data).encode()
        return Pending(line, size, parse_line(line), blob, raw.get("completing") is True)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: not a pending-append record ({exc})") from None


def _write_pending(
    directory: Path,
    line: bytes,
    chain_size: int,
    data: bytes | None = None,
    completing: bool = False,
) -> None:
    record = {
        "line": line.decode("utf-8"),
        "chain_size": chain_size,
        "data": None if data is None else data.decode("utf-8"),
        "completing": completing,
    }
    atomic_write_bytes(directory / PENDING_FILE, canonical_json(record), mode=0o600)


def _drop_pending(directory: Path) -> None:
    (directory / PENDING_FILE).unlink(missing_ok=True)
    fsync_directory(directory)


def _not_genuine(pending: Pending, head: bytes, key: bytes | None) -> str | None:
    """Why the pending entry is not one this history's writer made on top of `head`."""
    if key is not None and not hmac.compare_digest(
        pending.entry.hmac, entry_hmac(key, pending.entry.entry_hash)
    ):
        return "the pending entry's HMAC does not verify"
    if entry_hash(pending.entry.hashed()) != pending.entry.entry_hash:
        return "the pending entry's hash does not match its fields"
    if len(head) < pending.chain_size or (head and not head.endswith(b"\n")):
        return "the chain is not the one the pending append extended"
    try:
        prev = parse_line(head.splitlines(keepends=True)[-1]).entry_hash if head else GENESIS
    except ValueError:
        return "the entry before the pending one is damaged"
    return None if pending.entry.prev == prev else "the pending entry does not follow the chain"


def _classify(directory: Path, pending: Pending, chain: bytes, key: bytes | None) -> str:
    """What an interrupted append left: "done", "complete", "rollback" or why it is not one."""
    head, tail = chain[: pending.chain_size], chain[pending.chain_size :]
    reason = _not_genuine(pending, head, key)
    if reason is None and tail == pending.line:
        reason = "done"
    elif reason is None and not pending.line.startswith(tail):
        reason = "the chain's end is not the pending entry"
    if reason is not None:
        return reason
    data = _read_report(directory, pending.entry)
    if data is None:
        return "rollback" if pending.data is None else "complete"
    if sha256_hex(data) != pending.entry.report_sha256:
        return f"report {pending.entry.report} is not the one the pending entry vouches for"
    return "complete"


# ---- appending ---------------------------------------------------------------------------


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    path = directory / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    except OSError as exc:
        raise safeio.describe_oserror(path, exc, "cannot open the history lock") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(f"{path}: the history lock is not a regular file")
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
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InputError(f"history {directory}: not writable")


def _append_line(directory: Path, line: bytes, chain_size: int) -> None:
    """Append `line` at `chain_size`; on any failure the chain is cut back to that size."""
    path = directory / CHAIN_FILE
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise safeio.describe_oserror(path, exc, "cannot append") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(f"{path}: not a regular file")
        os.ftruncate(fd, chain_size)
        os.lseek(fd, chain_size, os.SEEK_SET)
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError as exc:
        with suppress(OSError):
            os.ftruncate(fd, chain_size)
            os.fsync(fd)
        raise safeio.describe_oserror(path, exc, "cannot append") from None
    finally:
        os.close(fd)


def _last_entry(chain: bytes, directory: Path) -> Entry | None:
    lines = chain.splitlines(keepends=True)
    if not lines:
        return None
    try:
        return parse_line(lines[-1])
    except ValueError as exc:
        raise InputError(
            f"{directory / CHAIN_FILE}: last line is damaged ({exc}) and no interrupted "
            "append explains it; run `offgrid report history verify`"
        ) from None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _new_entry(key: bytes, previous: Entry | None, data: bytes, host: str, at: str) -> Entry:
    seq = previous.seq + 1 if previous is not None else 1
    digest = sha256_hex(data)
    fields: dict[str, Any] = {
        "v": ENTRY_VERSION,
        "seq": seq,
        "timestamp": _now(),
        "host": host,
        "finished_at": at,
        "report": f"{seq:06d}-{digest[:16]}.json",
        "report_sha256": digest,
        "prev": previous.entry_hash if previous is not None else GENESIS,
    }
    own_hash = entry_hash(fields)
    fields.pop("v")
    return Entry(**fields, entry_hash=own_hash, hmac=entry_hmac(key, own_hash))


def _add(
    directory: Path, key: bytes, data: bytes, host: str, at: str, *, record: bool = False
) -> Entry:
    """One append under the lock: pending record, report, line, pending record removed.

    A repair `record` carries its report inside the pending record and is never rolled
    back: replacing the pending record of the append it repaired, it keeps the account of
    that repair alive until it is itself in the chain.
    """
    chain = _read_chain(directory)
    entry = _new_entry(key, _last_entry(chain, directory), data, host, at)
    line = entry.to_line()
    _write_pending(directory, line, len(chain), data if record else None)
    report = directory / REPORTS_DIR / entry.report
    try:
        atomic_write_bytes(report, data, mode=0o600)
        _append_line(directory, line, len(chain))
    except BaseException:
        # nothing vouches for the report yet: undo it; a kill here leaves pending.json
        if not record:
            with suppress(OSError):
                report.unlink(missing_ok=True)
                _drop_pending(directory)
        raise
    _drop_pending(directory)
    return entry


def _recover(directory: Path, key: bytes) -> list[str]:
    """Finish or undo an interrupted append; what was done, in words (empty: nothing)."""
    for folder in (directory, directory / REPORTS_DIR, directory / SIGNATURES_DIR):
        remove_stale_in(folder)  # temporaries of killed writers: never part of the history
    pending = _read_pending(directory)
    if pending is None:
        return []
    outcome = _classify(directory, pending, _read_chain(directory), key)
    seq, name = pending.entry.seq, pending.entry.report
    is_record = pending.data is not None
    completed = [f"completed the interrupted append of entry {seq} (report {name} kept)"]
    if outcome == "done":
        if pending.completing and not is_record:
            return completed  # completed by a repair that was killed before recording it
        _drop_pending(directory)
        return []
    if outcome == "complete":
        if pending.data is not None:
            atomic_write_bytes(directory / REPORTS_DIR / name, pending.data, mode=0o600)
        else:
            _write_pending(directory, pending.line, pending.chain_size, completing=True)
        _append_line(directory, pending.line, pending.chain_size)
        if is_record:  # the record of an earlier repair: in the chain now, nothing new to record
            _drop_pending(directory)
            return [f"{REPAIR_RECORD_DONE} {seq}"]
        return completed
    if outcome == "rollback":
        _append_line(directory, b"", pending.chain_size)
        (directory / REPORTS_DIR / name).unlink(missing_ok=True)
        return [f"rolled back the interrupted append of entry {seq}: no report was stored"]
    raise InputError(
        f"{directory / PENDING_FILE}: cannot finish the interrupted append of entry {seq}: "
        f"{outcome}; run `offgrid report history verify`"
    )


def _to_record(actions: list[str]) -> list[str]:
    return [a for a in actions if not a.startswith(REPAIR_RECORD_DONE)]


def _record_repair(directory: Path, key: bytes, actions: list[str]) -> Entry:
    at = _now()
    record = {"schema": REPAIR_SCHEMA, "repaired_at": at, "actions": actions}
    return _add(directory, key, canonical_json(record), os.uname().nodename, at, record=True)


def _key_for_writing(directory: Path, key_path: Path | None, create: bool) -> bytes:
    key, why = load_key(key_path_for(directory, key_path), "history key", create=create)
    if key is None:
        raise InputError(why)
    return key


def preflight(directory: Path, key_path: Path | None = None) -> None:
    """Before a long audit: the history can take an append (directory, lock, chain, key)."""
    if not directory.exists():
        parent = next((p for p in directory.parents if p.exists()), Path("."))
        if not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(f"history {directory}: cannot create it ({parent} is not writable)")
        return
    if not directory.is_dir():
        raise InputError(f"history {directory}: not a directory")
    _prepare_directory(directory)
    for name in (LOCK_FILE, CHAIN_FILE, PENDING_FILE):
        with suppress(FileNotFoundError):
            mode = os.lstat(directory / name).st_mode
            if not stat.S_ISREG(mode):
                raise InputError(f"history {directory / name}: is {safeio.kind_of(mode)}")
    key = key_path_for(directory, key_path)
    if key.exists() or key.is_symlink():
        usable, why = load_key(key, "history key", create=False)
        if usable is None:
            raise InputError(why)


def append(directory: Path, report: Mapping[str, Any], key_path: Path | None = None) -> Entry:
    """Store `report` (the dict of a valid report) and chain it; returns its entry.

    An interrupted earlier append is finished or rolled back first, and recorded.
    """
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
        key = _key_for_writing(directory, key_path, create=True)
        actions = _to_record(_recover(directory, key))
        if actions:
            _record_repair(directory, key, actions)
        host, at = str(report["host"]["hostname"]), str(report["finished_at"])
        return _add(directory, key, data, host, at)


def append_file(directory: Path, path: Path, key_path: Path | None = None) -> Entry:
    return append(directory, read_json(path), key_path)


def repair(directory: Path, key_path: Path | None = None) -> tuple[list[str], Entry | None]:
    """Finish or undo an interrupted append; returns the actions and the entry recording them."""
    if not directory.is_dir():
        raise InputError(f"{directory}: no such history directory")
    _prepare_directory(directory)
    with _locked(directory):
        key = _key_for_writing(directory, key_path, create=False)
        actions = _recover(directory, key)
        to_record = _to_record(actions)
        return actions, _record_repair(directory, key, to_record) if to_record else None


# ---- verifying ---------------------------------------------------------------------------


def _check_report(directory: Path, entry: Entry) -> Iterator[Problem]:
    if not _REPORT_NAME.match(entry.report):
        yield Problem(entry.seq, f"report name {entry.report!r} is not a history file")
        return
    try:
        data = _read_report(directory, entry)
    except InputError as exc:
        yield Problem(entry.seq, f"report {entry.report} cannot be read: {exc}")
        return
    if data is None:
        yield Problem(entry.seq, f"report {entry.report} is missing")
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


def _orphans(
    directory: Path, entries: list[Entry], last_seq: int, pending: str | None
) -> Iterator[Problem]:
    """Files the chain does not account for: what a deleted tail entry leaves behind."""
    known = {entry.report for entry in entries} | ({pending} if pending else set())
    for path in sorted((directory / REPORTS_DIR).glob("*.json")):
        if path.name not in known:
            yield Problem(None, f"report {path.name} is not in the chain (its entry was removed)")
    for path in sorted((directory / SIGNATURES_DIR).glob("*.sig")):
        stem = path.name.removesuffix(".sig")
        if stem.isdigit() and int(stem) > last_seq:
            yield Problem(
                None, f"signature {path.name} is for entry {int(stem)}, beyond the chain's end"
            )


def _interrupted(directory: Path, chain: bytes, key: bytes | None) -> tuple[bytes, Pending | None]:
    """The chain without the torn line of an interrupted append, and that append (if any)."""
    try:
        pending = _read_pending(directory)
    except InputError:
        return chain, None
    if pending is None:
        return chain, None
    try:
        outcome = _classify(directory, pending, chain, key)
    except (InputError, ValueError):
        return chain, None
    if outcome in ("complete", "rollback"):
        return chain[: pending.chain_size], pending
    return chain, None


def _repair_note(directory: Path, entry: Entry) -> str | None:
    with suppress(InputError):
        data = _read_report(directory, entry)
        if data is not None and data.startswith(b'{"actions":'):
            record = safeio.parse_json(data, entry.report)
            if isinstance(record, dict) and record.get("schema") == REPAIR_SCHEMA:
                return (
                    f"entry {entry.seq} records a repair: {'; '.join(map(str, record['actions']))}"
                )
    return None


def verify(
    directory: Path, key_path: Path | None = None, expect_head: str | None = None
) -> Verification:
    """Every way the history differs from what was appended (empty problems: intact)."""
    key, why = load_key(key_path_for(directory, key_path), "history key", create=False)
    chain, pending = _interrupted(directory, _read_chain(directory), key)
    lines = chain.splitlines(keepends=True)
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
        notes += filter(None, [_repair_note(directory, entry)])
        prev = entry.entry_hash
    problems += _orphans(directory, entries, len(lines), pending.entry.report if pending else None)
    if expect_head is not None and expect_head not in {e.entry_hash for e in entries}:
        problems.append(
            Problem(None, f"anchored head {expect_head[:16]}… is not in the chain (truncated?)")
        )
    waiting = (
        f"entry {pending.entry.seq} was being appended when the writer stopped (an interrupted "
        "write, not tampering): `offgrid report history repair` finishes or undoes it"
        if pending
        else None
    )
    return Verification(tuple(entries), tuple(problems), tuple(notes), why or None, waiting)

"""Egress attempts the kernel recorded: ulogd2's JSON lines for the reject rule's NFLOG group.

The egress rule `meta skuid USER log prefix "offgrid-egress " group N` hands every packet
the service user sends outside loopback to NFLOG group N before the reject rule drops it;
ulogd2 (stack NFLOG → BASE → IFINDEX → IP2STR → JSON) writes one JSON object per packet.
Each has the kernel's timestamp (`oob.time.sec`/`oob.time.usec`), the addresses
(`src_ip`, `dest_ip`), ports, the IP protocol and the socket owner's uid (`oob.uid`);
NFLOG does not know the process.

The log is read whole, bounded: a file over MAX_BYTES is an error (nothing is guessed
from part of it), a line that is not one of these objects is counted, not trusted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from auditor.inventory.interface import EgressAttempt, EgressRecording, LogPosition

PREFIX = "offgrid-egress "
SEAL_PREFIX = "offgrid-seal "  # role offgrid_seal's rule inside the engine's namespace
MAX_BYTES = 64 * 1024 * 1024
# Packets of one flow (protocol, addresses, ports) this close together are one attempt:
# a rejected SYN is retransmitted after 1, 3, 7 … s while connect() still waits.
SAME_ATTEMPT_S = 130.0
_PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp"}
_FAMILIES = {2: "ipv4", 10: "ipv6"}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(record: Mapping[str, object]) -> str | None:
    sec, usec = _int(record.get("oob.time.sec")), _int(record.get("oob.time.usec")) or 0
    if sec is None:
        return None
    stamp = datetime.fromtimestamp(sec + usec / 1e6, UTC)
    return stamp.isoformat(timespec="microseconds")


def attempt_from_record(record: Mapping[str, object]) -> EgressAttempt | None:
    """One ulogd2 JSON object → EgressAttempt; None when it lacks what an attempt needs."""
    when = _time(record)
    destination, source = record.get("dest_ip"), record.get("src_ip")
    protocol = _int(record.get("ip.protocol"))
    if when is None or not isinstance(destination, str) or not isinstance(source, str):
        return None
    family = _FAMILIES.get(_int(record.get("oob.family")) or 0)
    prefix = record.get("oob.prefix")
    return EgressAttempt(
        time=when,
        protocol=_PROTOCOLS.get(protocol, str(protocol)) if protocol is not None else "unknown",
        family=family or ("ipv6" if ":" in destination else "ipv4"),
        source=source,
        source_port=_int(record.get("src_port")),
        destination=destination,
        destination_port=_int(record.get("dest_port")),
        uid=_int(record.get("oob.uid")),
        prefix=prefix if isinstance(prefix, str) else "",
    )


def _flow(attempt: EgressAttempt) -> tuple[object, ...]:
    return (attempt.protocol, attempt.source, attempt.source_port, attempt.destination,
            attempt.destination_port, attempt.uid)  # fmt: skip


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def collapse(packets: list[EgressAttempt]) -> tuple[EgressAttempt, ...]:
    """One attempt per flow and burst: later packets of the same flow only count."""
    attempts: list[EgressAttempt] = []
    open_flows: dict[tuple[object, ...], int] = {}
    for packet in packets:
        index = open_flows.get(_flow(packet))
        if index is not None:
            first = attempts[index]
            latest = first.last_time or first.time
            if 0 <= _seconds(packet.time) - _seconds(latest) <= SAME_ATTEMPT_S:
                attempts[index] = dataclasses.replace(
                    first, packets=first.packets + 1, last_time=packet.time
                )
                continue
        open_flows[_flow(packet)] = len(attempts)
        attempts.append(packet)
    return tuple(attempts)


def parse(text: str, prefix: str = PREFIX) -> tuple[tuple[EgressAttempt, ...], int]:
    """(attempts with the rule's `prefix`, lines that were not a recorded packet)."""
    attempts: list[EgressAttempt] = []
    bad = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            bad += 1
            continue
        attempt = attempt_from_record(record) if isinstance(record, dict) else None
        if attempt is None:
            bad += 1
        elif attempt.prefix == prefix:
            attempts.append(attempt)
    return collapse(attempts), bad


NFLOG_PROC = Path("/proc/net/netfilter/nfnetlink_log")


def listening_groups(proc: Path = NFLOG_PROC) -> tuple[int, ...] | None:
    """NFLOG groups with a listener bound in this network namespace; None: unreadable.

    Each line of the kernel's table starts with the group number and the listener's
    netlink port id.
    """
    try:
        lines = proc.read_text("ascii").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    groups = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit() and fields[1].isdigit():
            groups.append(int(fields[0]))
    return tuple(groups)


TAIL_BYTES = 4096
ROTATED_SUFFIX = ".1"  # logrotate's first rotation (delaycompress keeps it uncompressed)


@dataclasses.dataclass(frozen=True)
class LogFile:
    """A recorder log as read whole: its inode and bytes."""

    path: str
    inode: int
    data: bytes


@dataclasses.dataclass(frozen=True)
class Delta:
    """What a log holds since a baseline position, and how that was decided."""

    data: bytes
    read_from: str
    log_break: str | None  # why the baseline could not be continued (None: it was)


def line_end(data: bytes) -> int:
    """The offset after the last complete line: a line still being written waits."""
    return data.rfind(b"\n") + 1


def tail_sha256(data: bytes, offset: int) -> str:
    return hashlib.sha256(data[max(0, offset - TAIL_BYTES) : offset]).hexdigest()


def position(log: LogFile) -> LogPosition:
    """Where the next audit continues: after the last complete line of `log`."""
    end = line_end(log.data)
    return LogPosition(log.path, log.inode, end, tail_sha256(log.data, end))


def continues(baseline: LogPosition, log: LogFile) -> bool:
    """Whether `log` is the file the baseline read, grown only at its end."""
    return (
        log.inode == baseline.inode
        and len(log.data) >= baseline.offset
        and tail_sha256(log.data, baseline.offset) == baseline.tail_sha256
    )


def _break(baseline: LogPosition, log: LogFile) -> str:
    if log.inode != baseline.inode:
        return (
            f"the log was replaced or rotated away: {log.path} is inode {log.inode}, the previous "
            f"audit read inode {baseline.inode}, which is neither there nor at {log.path}"
            f"{ROTATED_SUFFIX}"
        )
    if len(log.data) < baseline.offset:
        return (
            f"the log was truncated: {len(log.data)} bytes, the previous audit had read "
            f"{baseline.offset}"
        )
    return (
        f"the log was rewritten: the {min(TAIL_BYTES, baseline.offset)} bytes before offset "
        f"{baseline.offset} differ from what the previous audit read"
    )


def since(baseline: LogPosition | None, log: LogFile, rotated: LogFile | None = None) -> Delta:
    """The complete lines `log` gained since `baseline` (pure).

    A log rotated since the baseline is continued in `rotated` (the same inode under the
    rotated name). Anything else that breaks the baseline — truncation, a rewrite before
    the offset, a replaced file — gives the whole log with the reason.
    """
    end = line_end(log.data)
    if baseline is None:
        return Delta(log.data[:end], "the whole log (no baseline)", None)
    if continues(baseline, log):
        return Delta(log.data[baseline.offset : end], f"offset {baseline.offset} on", None)
    if rotated is not None and continues(baseline, rotated):
        rest = rotated.data[baseline.offset :]
        # a line cut off by the rotation stays a line of its own (an unparsable one)
        rest += b"\n" if rest and not rest.endswith(b"\n") else b""
        return Delta(
            rest + log.data[:end],
            f"offset {baseline.offset} of {rotated.path} on, then the whole log",
            None,
        )
    return Delta(log.data[:end], "the whole log", _break(baseline, log))


def _load(path: Path) -> tuple[LogFile | None, EgressRecording]:
    """The log whole (bounded, never through a link), and its recording facts so far."""
    base = EgressRecording(str(path), False, (), listening_groups=listening_groups())
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None, base
    except OSError as exc:
        return None, _with(base, exists=True, error=f"unreadable: {exc.strerror or exc}")
    info = os.fstat(fd)
    found = _with(base, exists=True, size=info.st_size, inode=info.st_ino)
    if not _is_regular(info.st_mode):
        os.close(fd)
        return None, _with(found, error="not a regular file")
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > MAX_BYTES:
            return None, _with(found, error=f"larger than {MAX_BYTES} bytes: rotate it")
        data = handle.read(MAX_BYTES + 1)
    return LogFile(str(path), info.st_ino, data), found


def read(path: Path, nflog_groups: tuple[int, ...] = ()) -> EgressRecording:
    """The recorder's log as it is now; a missing or unreadable log says why."""
    log, found = _load(path)
    found = _with(found, nflog_groups=nflog_groups)
    if log is None:
        return found
    attempts, bad = parse(log.data.decode("utf-8", "replace"))
    return _with(found, attempts=attempts, unparsable_lines=bad)


@dataclasses.dataclass(frozen=True)
class LogRead:
    """The recording since a baseline, where the next audit continues, and any break."""

    recording: EgressRecording
    position: LogPosition | None  # None: the log is missing or unreadable
    log_break: str | None


def read_since(
    path: Path,
    baseline: LogPosition | None,
    nflog_groups: tuple[int, ...] = (),
    prefix: str = PREFIX,
) -> LogRead:
    """The attempts recorded since `baseline` (the whole log without one), of the rule
    that logs with `prefix`."""
    log, found = _load(path)
    found = _with(found, nflog_groups=nflog_groups)
    if log is None:
        why = (
            None
            if baseline is None
            else f"the log {path} cannot be read: {found.error or 'missing'}"
        )
        return LogRead(found, None, why)
    rotated = None
    if baseline is not None and baseline.inode != log.inode:
        rotated, _ = _load(Path(f"{path}{ROTATED_SUFFIX}"))
    delta = since(baseline, log, rotated)
    attempts, bad = parse(delta.data.decode("utf-8", "replace"), prefix)
    recording = _with(found, attempts=attempts, unparsable_lines=bad, read_from=delta.read_from)
    return LogRead(recording, position(log), delta.log_break)


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


def _with(recording: EgressRecording, **changes: object) -> EgressRecording:
    return dataclasses.replace(recording, **changes)  # type: ignore[arg-type]

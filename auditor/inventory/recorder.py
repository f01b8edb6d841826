"""Recorded sources of egress attempts: a counting reject rule, its NFLOG listener, its log.

Each audit reads where every source stands (boot id, the rule's table and rule handles and
the digest of its table, the counter, the listening process and its start time, how far the
log was read) and the attempts recorded since the previous audit's state of the same
source. Whether that was one continuous recording is for the checks to judge.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from auditor.inventory import egress_log, netns
from auditor.inventory.interface import (
    EgressRecording,
    LoggerIdentity,
    NftRule,
    PreviousAudit,
    RecordedSource,
    RecorderState,
    RuleIdentity,
)

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
NETLINK = Path("/proc/net/netlink")
NETLINK_NETFILTER = 12
# how long the audit waits for the recorder to write packets the counter already shows
CATCH_UP_S = 2.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def boot_id(path: Path = BOOT_ID) -> str | None:
    try:
        return path.read_text("ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def read_text(path: Path) -> str | None:
    """An ASCII kernel table (/proc/…); None when unreadable."""
    try:
        return path.read_text("ascii")
    except (OSError, UnicodeDecodeError):
        return None


def ports_from(table: str) -> dict[int, int]:
    """NFLOG group -> the netlink port id of its listener, from the kernel's NFLOG table."""
    ports = {}
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit() and fields[1].isdigit():
            ports[int(fields[0])] = int(fields[1])
    return ports


def listener_ports(proc: Path = egress_log.NFLOG_PROC) -> dict[int, int]:
    """NFLOG group -> the netlink port id of its listener."""
    table = read_text(proc)
    return ports_from(table) if table is not None else {}


def inode_from(port: int, table: str) -> int | None:
    """The socket inode of the netfilter netlink socket bound to `port`, from a namespace's
    /proc/net/netlink."""
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 10 and fields[1] == str(NETLINK_NETFILTER) and fields[2] == str(port):
            return int(fields[9]) if fields[9].isdigit() else None
    return None


def netlink_inode(port: int, table: Path = NETLINK) -> int | None:
    """The socket inode of the netfilter netlink socket bound to `port` in this namespace."""
    text = read_text(table)
    return inode_from(port, text) if text is not None else None


def _holds(pid: int, target: str) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return True
        except OSError:
            continue
    return False


def holder(inode: int, hint: int) -> int | None:
    """The process holding socket `inode`: usually the port id's own pid, else searched."""
    target = f"socket:[{inode}]"
    if _holds(hint, target):
        return hint
    for pid in psutil.pids():
        if pid != hint and _holds(pid, target):
            return pid
    return None


def _identify(pid: int | None) -> LoggerIdentity | None:
    if pid is None:
        return None
    try:
        process = psutil.Process(pid)
        started = datetime.fromtimestamp(process.create_time(), UTC)
        name = process.name()
    except psutil.Error:
        return None
    return LoggerIdentity(pid, name, started.isoformat(timespec="milliseconds"))


def logger(group: int) -> LoggerIdentity | None:
    """The process listening on NFLOG `group`, with its start time; None: none found."""
    port = listener_ports().get(group)
    inode = netlink_inode(port) if port is not None else None
    return _identify(holder(inode, port) if inode is not None and port is not None else None)


def logger_in(group: int, nflog: str | None, netlink: str | None) -> LoggerIdentity | None:
    """The process listening on NFLOG `group` of another namespace, from that namespace's
    NFLOG and netlink tables (read inside it); None: none found or unreadable."""
    if nflog is None or netlink is None:
        return None
    port = ports_from(nflog).get(group)
    inode = inode_from(port, netlink) if port is not None else None
    return _identify(holder(inode, port) if inode is not None and port is not None else None)


def _counting(rule: NftRule, rules: tuple[NftRule, ...]) -> NftRule | None:
    """The counting drop/reject rule after `rule` in its chain for the same socket owner."""
    return next(
        (
            r for r in rules
            if (r.family, r.table, r.chain, r.skuid) == (rule.family, rule.table, rule.chain,
                                                         rule.skuid)
            and r.verdict in ("drop", "reject") and r.packets is not None
        ),
        None,
    )  # fmt: skip


@dataclass(frozen=True)
class Scope:
    """Where recorded sources are read: the audit's own namespace, or a sealed engine's."""

    namespace: str | None  # "net:[INODE]"
    sealed: bool = False
    prefix: str = egress_log.PREFIX  # the rule's `log prefix` in the recorder's lines
    # the NFLOG listeners of that namespace; None with `sealed` False: the audit's own
    listening_groups: tuple[int, ...] | None = None


def own_scope() -> Scope:
    return Scope(netns.namespace_of(os.getpid()))


SEALED_NAME = "engine namespace: "


def source_name(rule: NftRule, log: Path, sealed: bool = False) -> str:
    name = f"nft {rule.family} {rule.table} {rule.chain} group {rule.log_group} -> {log}"
    return SEALED_NAME + name if sealed else name


def _identity(rule: NftRule) -> RuleIdentity:
    return RuleIdentity(
        rule.family, rule.table, rule.chain, rule.table_handle, rule.handle, rule.table_digest
    )


def _same_place(before: RecorderState | None, scope: Scope) -> bool:
    """Whether `before` was read in the namespace `scope` is read in (a baseline without a
    namespace was read in the audit's own)."""
    if before is None or before.sealed != scope.sealed:
        return False
    return (before.namespace is None and not scope.sealed) or before.namespace == scope.namespace


def _new_packets(now: NftRule | None, before: RecorderState | None, scope: Scope) -> int:
    """Packets the counter gained since `before` (all of them when the rule is new)."""
    if now is None or now.packets is None:
        return 0
    same = (
        before is not None
        and _same_place(before, scope)
        and before.rule == _identity(now)
        and before.packets is not None
    )
    return now.packets - (before.packets or 0) if same and before else now.packets


def _read(
    log: Path, before: RecorderState | None, groups: tuple[int, ...], expect: int, scope: Scope
) -> egress_log.LogRead:
    """The log since `before`, waiting briefly for packets the counter already shows."""
    deadline = time.monotonic() + CATCH_UP_S
    while True:
        read = egress_log.read_since(log, before.log if before else None, groups, scope.prefix)
        if scope.sealed:
            recording = dataclasses.replace(read.recording, listening_groups=scope.listening_groups)
            read = dataclasses.replace(read, recording=recording)
        recorded = sum(a.packets for a in read.recording.attempts)
        if recorded >= expect or time.monotonic() >= deadline or read.position is None:
            return read
        time.sleep(0.05)


def _baseline(previous: PreviousAudit | None, name: str) -> RecorderState | None:
    if previous is None or previous.error is not None:
        return None
    return next((s for s in previous.states if s.source == name), None)


def sources(
    rules: tuple[NftRule, ...] | None,
    log: Path,
    previous: PreviousAudit | None,
    find_logger: Callable[[int], LoggerIdentity | None] = logger,
    scope: Scope | None = None,
) -> tuple[tuple[RecordedSource, ...], EgressRecording]:
    """Every source that records into `log`, and the recording since its baseline; `scope`
    says in which namespace `rules` and `find_logger` were read (default: the audit's)."""
    where = scope if scope is not None else own_scope()
    groups = tuple(sorted({r.log_group for r in rules or () if r.log_group is not None}))
    found: list[RecordedSource] = []
    recording = None
    boot = boot_id()
    for rule in (r for r in rules or () if r.log_group is not None):
        name = source_name(rule, log, where.sealed)
        before = _baseline(previous, name)
        counting = _counting(rule, rules or ())
        read = _read(log, before, groups, _new_packets(counting, before, where), where)
        recording = recording or read.recording
        state = RecorderState(
            source=name,
            read_at=_now(),
            boot_id=boot,
            skuid=rule.skuid,
            rule=_identity(counting) if counting else None,
            packets=counting.packets if counting else None,
            bytes=counting.bytes if counting else None,
            logger=find_logger(rule.log_group) if rule.log_group is not None else None,
            log=read.position,
            recorded_packets=sum(a.packets for a in read.recording.attempts),
            namespace=where.namespace,
            sealed=where.sealed,
        )
        found.append(RecordedSource(state, before, read.log_break))
    if recording is None:
        recording = _read(log, None, groups, 0, where).recording
    return tuple(found), recording

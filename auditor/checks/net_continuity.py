"""OG-NET-07: the egress recording was continuous since the previous audit.

A recorded source (a counting reject rule that hands packets to an NFLOG group, the
process listening on the group, the log it writes) is continuous when, since the state the
previous report of this host left: the machine did not reboot, the rule is the same rule
(table and rule handles, the table's rules), its counter only grew, the same recorder
process listened throughout, the log only grew at its end, and every packet the counter
gained is in the log. Anything else is a gap, reported with what broke and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from auditor.checks import _sealed
from auditor.checks.interface import check
from auditor.inventory.interface import (
    Facts,
    LoggerIdentity,
    PreviousAudit,
    RecordedSource,
    RecorderState,
    RuleIdentity,
)
from auditor.verdicts import CannotEvaluate, DoesNotApply, Finding, Status, finding


@dataclass(frozen=True)
class Gap:
    """One way the recording was not continuous."""

    detail: str
    restarted: bool = True  # the recording started over (else: it broke, or a record is missing)
    provable: bool = True  # False: the times themselves cannot be trusted (the clock went back)


def _when(stamp: str | None) -> datetime | None:
    if stamp is None:
        return None
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None  # a time without a zone compares with none


def _clock(before: RecorderState, now: RecorderState) -> list[Gap]:
    then, current = _when(before.read_at), _when(now.read_at)
    if then is None or current is None:
        return [Gap(f"unreadable times: {before.read_at!r} / {now.read_at!r}", False, False)]
    if current < then:
        return [
            Gap(
                f"the clock went back: the previous audit read the source at "
                f"{before.read_at}, this one at {now.read_at}",
                False,
                False,
            )
        ]
    return []


def _rule_key(rule: RuleIdentity) -> str:
    handles = f"table handle {rule.table_handle}, rule handle {rule.rule_handle}"
    return f"{rule.family} {rule.table} {rule.chain} ({handles})"


def _rule(before: RecorderState, now: RecorderState) -> list[Gap]:
    if now.boot_id != before.boot_id:
        return [
            Gap(
                f"the machine rebooted (boot id {before.boot_id} -> {now.boot_id}): "
                f"recording restarted at boot, after {before.read_at}"
            )
        ]
    if now.rule is None:
        return [Gap("the counting reject rule is no longer loaded")]
    if before.rule is None:
        return [Gap(f"the counting reject rule was loaded after {before.read_at}")]
    old, new = before.rule, now.rule
    if (old.table_handle, old.rule_handle) != (new.table_handle, new.rule_handle):
        return [
            Gap(
                f"the ruleset was reloaded after {before.read_at}: {_rule_key(old)} -> "
                f"{_rule_key(new)}; its counter started over"
            )
        ]
    if old.digest != new.digest:
        return [Gap(f"the rules of table {new.table} changed after {before.read_at}")]
    return []


def _counter(before: RecorderState, now: RecorderState, comparable: bool) -> list[Gap]:
    if now.packets is None:
        return [Gap("the reject rule has no counter")]
    if comparable and before.packets is not None and now.packets < before.packets:
        return [
            Gap(
                f"the counter was reset: {now.packets} packets now, {before.packets} at "
                f"{before.read_at}"
            )
        ]
    gained = now.packets - (before.packets or 0) if comparable else now.packets
    if gained > now.recorded_packets:
        missing = gained - now.recorded_packets
        return [
            Gap(
                f"{missing} packet(s) the rule rejected since {before.read_at} are not in "
                f"the log ({gained} counted, {now.recorded_packets} recorded)",
                False,
            )
        ]
    return []


def _describe_logger(logger: LoggerIdentity) -> str:
    return f"{logger.name} pid {logger.pid} started {logger.started_at}"


def _logger(before: RecorderState, now: RecorderState) -> list[Gap]:
    """The same process (pid and start time, within one boot) listened at both audits: it
    has listened since before the previous one."""
    if now.logger is None:
        return [Gap("nothing listens on the rule's NFLOG group now: packets are not recorded")]
    if before.logger is None:
        return [Gap(f"the recorder started after {before.read_at}: {_describe_logger(now.logger)}")]
    if now.logger != before.logger:
        return [
            Gap(
                f"the recorder restarted at {now.logger.started_at}: "
                f"{_describe_logger(before.logger)} -> {_describe_logger(now.logger)}"
            )
        ]
    return []


def _place(state: RecorderState) -> str:
    if state.sealed:
        return f"the engine's own network namespace {state.namespace}"
    return f"the audit's (host) network namespace {state.namespace or '(not recorded)'}"


def _namespace(before: RecorderState, now: RecorderState) -> list[Gap]:
    """The evidence came from the same network namespace both times (a baseline that
    names none was read in the audit's own)."""
    if before.sealed != now.sealed:
        return [
            Gap(
                f"the evidence came from {_place(before)} at the previous audit and from "
                f"{_place(now)} now: the recording there started after {before.read_at}"
            )
        ]
    if before.namespace is not None and before.namespace != now.namespace:
        what = (
            "the engine's network namespace was recreated"
            if now.sealed
            else ("the audit's network namespace changed")
        )
        return [
            Gap(
                f"{what} after {before.read_at} ({before.namespace} -> {now.namespace}): "
                "its rule, counter and recorder started over"
            )
        ]
    return []


def gaps(before: RecorderState, now: RecorderState, log_break: str | None) -> list[Gap]:
    """Every way `now` does not continue `before` (pure; empty: continuous)."""
    found = _clock(before, now)
    moved = _namespace(before, now)
    rule = moved or _rule(before, now)
    found += rule
    found += _logger(before, now)
    if log_break is not None:
        found.append(Gap(log_break, False))
    elif now.log is None:
        found.append(Gap("the recorder's log cannot be read", False))
    found += _counter(before, now, comparable=not rule)
    return found


def _evidence(source: RecordedSource) -> list[tuple[str, str]]:
    now, before = source.now, source.before
    rule = now.rule
    evidence = [
        ("source", now.source),
        ("namespace", f"{_place(before) if before else '-'} -> {_place(now)}"),
        ("boot id", f"{before.boot_id if before else '-'} -> {now.boot_id}"),
        ("rule", _rule_key(rule) if rule else "not loaded"),
        ("counter", f"{before.packets if before else '-'} -> {now.packets} packets"),
        ("recorder", _describe_logger(now.logger) if now.logger else "none listening"),
    ]
    if now.log is not None:
        start = before.log.offset if before and before.log else 0
        evidence.append(
            ("log", f"{now.log.path} inode {now.log.inode}, offset {start} -> {now.log.offset}")
        )
    evidence.append(("packets recorded since the baseline", str(now.recorded_packets)))
    return evidence


def _first_night(previous: PreviousAudit, sources: tuple[RecordedSource, ...]) -> str | None:
    if previous.entry is None:
        return (
            f"first night: no earlier report of this host in {previous.history}; this report's "
            "recorder state is the baseline of the next audit"
        )
    if not previous.states:
        return (
            f"first night of recording: the previous report (entry {previous.entry}, "
            f"{previous.finished_at}) carries no egress baseline; this report's is the next one's"
        )
    return None


def _unmatched(previous: PreviousAudit, sources: tuple[RecordedSource, ...]) -> list[Gap]:
    names = {s.now.source for s in sources}
    found = [
        Gap(f"source {s.source} recorded at the previous audit is gone")
        for s in previous.states
        if s.source not in names
    ]
    found += [
        Gap(
            f"source {s.now.source} has no baseline in the previous report (entry "
            f"{previous.entry}): recording restarted under a new name"
        )
        for s in sources
        if s.before is None
    ]
    return found


def _verdict(previous: PreviousAudit, found: list[Gap], evidence: list[tuple[str, str]]) -> Finding:
    since = f"the previous audit (entry {previous.entry}, {previous.finished_at})"
    if any(not g.provable for g in found):
        raise CannotEvaluate(
            "continuity since "
            + since
            + " cannot be proven: "
            + "; ".join(g.detail for g in found if not g.provable),
            evidence,
        )
    if found:
        what = "recording restarted" if any(g.restarted for g in found) else "recording broken"
        return finding(
            Status.FAIL, f"{what} since {since}: " + "; ".join(g.detail for g in found), evidence
        )
    return finding(Status.PASS, f"egress recording was continuous since {since}", evidence)


def _configured(facts: Facts) -> tuple[RecordedSource, ...]:
    """Every recorded source the audit read; DoesNotApply when none is configured."""
    egress = facts.egress
    sealed = egress.sealed if egress else None
    host = egress is not None and egress.recording is not None
    if egress is None or (not host and (sealed is None or sealed.log is None)):
        raise DoesNotApply("no recorder log configured (--egress-log, --seal-log)")
    return (*egress.sources, *(sealed.sources if sealed else ()))


def _sealed_gap(facts: Facts, evidence: list[tuple[str, str]]) -> Finding | None:
    """A sealed engine whose namespace cannot be followed: error or fail, never a pass."""
    sealed = facts.egress.sealed if facts.egress else None
    problem = _sealed.continuity_problem(sealed) if sealed else None
    if sealed is None or problem is None:
        return None
    evidence = evidence + _sealed.evidence(sealed)
    if problem[0] is Status.ERROR:
        raise CannotEvaluate(problem[1], evidence)
    return finding(problem[0], problem[1], evidence)


@check("OG-NET-07")
def egress_recording_continuous(facts: Facts) -> Finding:
    egress = facts.egress
    previous = egress.previous if egress else None
    sources = _configured(facts)
    if previous is None:
        raise DoesNotApply("no report history given (--history): no baseline to continue")
    if previous.error is not None:
        raise CannotEvaluate(f"the previous egress baseline cannot be used: {previous.error}")
    if egress is not None and egress.recording is not None and egress.nft_rules is None:
        raise CannotEvaluate(f"the nftables ruleset could not be read: {egress.nft_error}")
    evidence = [
        ("previous audit", f"{previous.history} entry {previous.entry} at {previous.finished_at}")
    ]
    for source in sources:
        evidence += _evidence(source)
    unfollowed = _sealed_gap(facts, evidence)
    if unfollowed is not None:
        return unfollowed
    if not sources:
        return finding(
            Status.FAIL,
            "no loaded rule hands rejected packets to an NFLOG group: nothing is recorded",
            evidence,
        )
    first = _first_night(previous, sources)
    if first is not None:
        raise DoesNotApply(first, evidence)
    found = _unmatched(previous, sources)
    for source in sources:
        if source.before is not None:
            found += gaps(source.before, source.now, source.log_break)
    return _verdict(previous, found, evidence)

"""OG-NET-05 and OG-NET-07 for a sealed engine: the record inside its own namespace.

Facts are built as the collector builds them for an engine whose namespace is not the
audit's (`EgressFacts.sealed`); each planted fault must keep the control from passing.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from auditor.checks import net, net_continuity
from auditor.inventory import egress_log, nft, recorder
from auditor.inventory.interface import (
    AuditOptions,
    EgressAttempt,
    EgressFacts,
    EgressRecording,
    Facts,
    LoggerIdentity,
    NftRule,
    PreviousAudit,
    RecordedSource,
    RecorderState,
    RuleIdentity,
    SealedRecording,
)
from auditor.report import baseline
from auditor.report.load import recorder_state
from auditor.verdicts import Status
from tests.unit.audit_facts import facts
from tests.unit.test_egress_continuity import NEXT_NIGHT, _report_with
from tests.unit.test_egress_continuity import _state as host_state

NS = "net:[4026532291]"
GROUP = 7412
LOG = "/var/log/offgrid-seal/llamacpp.json"
RULE = RuleIdentity("inet", "offgrid_seal", "output", 1, 4, "a" * 64)
SOURCE = f"{recorder.SEALED_NAME}nft inet offgrid_seal output group {GROUP} -> {LOG}"
ULOGD = LoggerIdentity(402, "ulogd", "2026-11-30T20:00:00.000+00:00")
RULES = (
    NftRule("inet", "offgrid_seal", "output", 3, None, None, None, None, None,
            'log prefix "offgrid-seal " group 7412', GROUP, 1, "a" * 64, "offgrid-seal "),
    NftRule("inet", "offgrid_seal", "output", 4, None, None, "reject", 20, 1200,
            "counter packets 20 bytes 1200 reject", None, 1, "a" * 64),
)  # fmt: skip
PREVIOUS_AT = "2026-12-01T02:31:00+00:00"


def attempt(second: int, destination: str = "198.51.100.50", port: int = 443) -> EgressAttempt:
    return EgressAttempt(
        f"2026-12-01T03:12:{second:02d}.000000+00:00", "tcp", "ipv4", "192.0.2.1",
        40000 + second, destination, port, 999, "offgrid-seal ",
    )  # fmt: skip


def state(**changes: object) -> RecorderState:
    base = RecorderState(
        source=SOURCE, read_at="2026-12-01T02:30:00.000000+00:00", boot_id="boot-a",
        skuid=None, rule=RULE, packets=0, bytes=0, logger=ULOGD,
        log=egress_log.position(egress_log.LogFile(LOG, 9, b"")), namespace=NS, sealed=True,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def sealed(
    attempts: tuple[EgressAttempt, ...] = (),
    sources: tuple[RecordedSource, ...] = (),
    **changes: object,
) -> SealedRecording:
    recording = EgressRecording(LOG, True, attempts, 100, 9, listening_groups=(GROUP,))
    base = SealedRecording(NS, 4242, LOG, RULES, None, (GROUP,), recording, sources)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def with_seal(seal: SealedRecording | None, previous: PreviousAudit | None = None) -> Facts:
    egress = EgressFacts((), None, None, None, previous, (), seal)
    return facts(egress=egress, options=AuditOptions(seal_log=Path(LOG)))


# ---------------------------------------------------------------- OG-NET-05


def test_attempts_out_of_the_seal_fail_with_time_and_destination() -> None:
    found = (attempt(1), attempt(2, "198.51.100.51", 53))
    result = net.no_recorded_egress_attempt(with_seal(sealed(found)))
    assert result.status is Status.FAIL, result
    assert result.summary.startswith(
        f"2 egress attempt(s) from the engine's network namespace {NS}"
    )
    listed = [e.value for e in result.evidence if e.label == "attempt"]
    assert listed[0].startswith("2026-12-01T03:12:01") and "198.51.100.50:443" in listed[0]
    assert all("in the engine's namespace" in line for line in listed), listed


def test_a_clean_seal_passes_and_names_its_namespace() -> None:
    result = net.no_recorded_egress_attempt(with_seal(sealed()))
    assert result.status is Status.PASS and NS in result.summary, result
    values = {e.label: e.value for e in result.evidence}
    assert "20 packets" in values["engine namespace: nft inet offgrid_seal output handle 4"]


def test_no_recorder_listening_inside_is_a_failure_not_a_pass() -> None:
    result = net.no_recorded_egress_attempt(with_seal(sealed(listening_groups=())))
    assert result.status is Status.FAIL, result
    assert "no recorder in the engine's network namespace" in result.summary
    assert "counted 20 packet(s)" in result.summary, result.summary


def test_a_listener_only_in_the_hosts_namespace_does_not_record_the_seal() -> None:
    host = EgressRecording("/var/log/offgrid-egress/egress.json", True, (), 0, 7,
                           listening_groups=(GROUP,))  # fmt: skip
    seal = sealed(listening_groups=(), log=None, recording=None)
    egress = EgressFacts((), None, None, host, None, (), seal)
    result = net.no_recorded_egress_attempt(facts(egress=egress))
    assert result.status is Status.FAIL, result
    assert "no recorder log is configured for its namespace" in result.summary


def test_nothing_configured_for_a_sealed_engine_says_so() -> None:
    result = net.no_recorded_egress_attempt(with_seal(sealed(log=None, recording=None)))
    assert result.status is Status.NOT_APPLICABLE and NS in result.summary, result
    assert "nothing records" in result.summary


def test_an_unreadable_namespace_or_ruleset_is_an_error() -> None:
    unentered = sealed(error="setns into /proc/4242/ns/net: Operation not permitted")
    for seal in (unentered, sealed(rules=None, nft_error="nft is not installed")):
        for check in (net.no_recorded_egress_attempt, net_continuity.egress_recording_continuous):
            previous = PreviousAudit("/h", 3, PREVIOUS_AT, (state(),))
            result = check(with_seal(seal, previous))
            assert result.status is Status.ERROR, (check, result)


def test_a_missing_log_or_no_logging_rule_is_a_failure() -> None:
    missing = sealed(recording=EgressRecording(LOG, False, (), listening_groups=(GROUP,)))
    unlogged = sealed(rules=RULES[1:])
    for seal in (missing, unlogged):
        result = net.no_recorded_egress_attempt(with_seal(seal))
        assert result.status is Status.FAIL, result


# ---------------------------------------------------------------- OG-NET-07


def _night(now: RecorderState, before: RecorderState) -> Facts:
    previous = PreviousAudit("/h", 3, PREVIOUS_AT, (before,))
    match = before if before.source == now.source else None
    return with_seal(sealed(sources=(RecordedSource(now, match),)), previous)


def test_a_continuous_seal_recording_passes() -> None:
    now = state(read_at=NEXT_NIGHT, packets=3, recorded_packets=3)
    result = net_continuity.egress_recording_continuous(_night(now, state()))
    assert result.status is Status.PASS, result
    values = {e.label: e.value for e in result.evidence}
    assert NS in values["namespace"] and "own network namespace" in values["namespace"]


def test_a_baseline_from_the_host_namespace_is_recording_restarted() -> None:
    now = state(read_at=NEXT_NIGHT)
    for before in (host_state(), dataclasses.replace(now, read_at=host_state().read_at,
                                                     sealed=False, namespace=None)):  # fmt: skip
        result = net_continuity.egress_recording_continuous(_night(now, before))
        assert result.status is Status.FAIL, result
        assert result.summary.startswith("recording restarted"), result.summary


def test_a_sealed_baseline_compared_with_the_host_namespace_is_recording_restarted() -> None:
    before = state()
    now = dataclasses.replace(before, read_at=NEXT_NIGHT, sealed=False, namespace="net:[1]")
    found = net_continuity.gaps(before, now, None)
    assert found and all(g.restarted for g in found), found
    assert "the audit's (host) network namespace" in found[0].detail


def test_a_recreated_namespace_is_recording_restarted_even_with_equal_handles() -> None:
    now = state(read_at=NEXT_NIGHT, namespace="net:[4026532400]")
    result = net_continuity.egress_recording_continuous(_night(now, state()))
    assert result.status is Status.FAIL and "recreated" in result.summary, result


def test_counted_but_unrecorded_packets_are_recording_broken() -> None:
    now = state(read_at=NEXT_NIGHT, packets=5, recorded_packets=2)
    result = net_continuity.egress_recording_continuous(_night(now, state()))
    assert result.status is Status.FAIL, result
    assert result.summary.startswith("recording broken") and "3 packet(s)" in result.summary


def test_a_restarted_recorder_in_the_namespace_is_recording_restarted() -> None:
    now = state(read_at=NEXT_NIGHT, logger=dataclasses.replace(ULOGD, pid=777))
    result = net_continuity.egress_recording_continuous(_night(now, state()))
    assert result.status is Status.FAIL and "recorder restarted" in result.summary, result


def test_a_sealed_engine_without_a_seal_log_is_not_followed_to_a_pass() -> None:
    host = EgressRecording("/var/log/offgrid-egress/egress.json", True, (), 0, 7,
                           listening_groups=(7411,))  # fmt: skip
    continuing = RecordedSource(host_state(read_at=NEXT_NIGHT), host_state())
    egress = EgressFacts(
        (), None, None, host, PreviousAudit("/h", 3, PREVIOUS_AT, (host_state(),)),
        (continuing,), sealed(log=None, recording=None),
    )  # fmt: skip
    result = net_continuity.egress_recording_continuous(facts(egress=egress))
    assert result.status is Status.FAIL and "nothing is recorded" in result.summary, result


def test_an_older_host_baseline_without_a_namespace_still_continues() -> None:
    now = host_state(read_at=NEXT_NIGHT, namespace="net:[4026531840]")
    assert net_continuity.gaps(host_state(), now, None) == []


# ---------------------------------------------------------------- collected and reported facts


def test_the_namespace_round_trips_through_the_report() -> None:
    data = _report_with(state(), "2026-12-01T02:31:00.000+00:00")
    assert baseline.states_from_report(json.loads(json.dumps(data))) == (state(),)
    older = {k: v for k, v in dataclasses.asdict(host_state()).items()
             if k not in ("namespace", "sealed")}  # fmt: skip
    assert recorder_state(older) == host_state()
    for bad in ({"sealed": "yes"}, {"namespace": 4}):
        try:
            recorder_state({**older, **bad})
        except ValueError:
            continue
        raise AssertionError(bad)


def test_every_rule_of_the_namespace_is_kept_with_its_log_prefix() -> None:
    log = {"log": {"prefix": "offgrid-seal ", "group": GROUP}}
    counter = {"counter": {"packets": 2, "bytes": 120}}
    ruleset = {"nftables": [
        {"table": {"family": "inet", "name": "offgrid_seal", "handle": 1}},
        {"rule": {"family": "inet", "table": "offgrid_seal", "chain": "output", "handle": 3,
                  "expr": [log]}},
        {"rule": {"family": "inet", "table": "offgrid_seal", "chain": "output", "handle": 4,
                  "expr": [counter, {"reject": None}]}},
    ]}  # fmt: skip
    assert nft.parse_ruleset(json.dumps(ruleset)) == ()  # the host's reading: owner rules only
    logged, counting = nft.parse_ruleset(json.dumps(ruleset), owner_scoped=False)
    assert (logged.log_group, logged.log_prefix, logged.table_handle) == (GROUP, "offgrid-seal ", 1)
    assert (counting.verdict, counting.packets) == ("reject", 2)


def test_the_recorder_of_another_namespace_is_found_from_its_tables() -> None:
    nflog = f" {GROUP}  4001     0 2 65531    100  1\n"
    netlink = (
        "sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n"
        "ffff8882 12  4001       00000000 0        0        0     2        0        222\n"
    )
    assert recorder.ports_from(nflog) == {GROUP: 4001}
    assert recorder.inode_from(4001, netlink) == 222
    assert recorder.logger_in(GROUP, None, netlink) is None  # unreadable: no recorder claimed
    assert recorder.logger_in(7411, nflog, netlink) is None

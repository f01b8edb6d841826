"""Egress recording across audits: the log delta, the continuity gaps, OG-NET-07, the baseline.

The delta and gap logic are pure; hypothesis generates the logs, counters and clocks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.checks import net, net_continuity
from auditor.inventory import egress_log, nft, recorder
from auditor.inventory.interface import (
    EgressFacts,
    EgressRecording,
    Facts,
    LoggerIdentity,
    NftRule,
    PreviousAudit,
    ProbeResult,
    RecordedSource,
    RecorderState,
    RuleIdentity,
)
from auditor.report import baseline, history
from auditor.report.from_facts import recording_sections
from auditor.report.load import from_dict, recorder_state
from auditor.report.model import ExtraSection, to_dict
from auditor.report.validate import validate
from auditor.verdicts import Status
from tests.unit.audit_facts import facts
from tests.unit.report_sample import sample_report
from tests.unit.test_egress_recording import BASE_SEC, GROUP, record

LOG = "/var/log/offgrid-egress/egress.json"
SOURCE = f"nft inet offgrid_egress output group {GROUP} -> {LOG}"
RULE = RuleIdentity("inet", "offgrid_egress", "output", 5, 4, "d" * 64)
LOGGER = LoggerIdentity(812, "ulogd", "2026-11-30T20:00:00.000+00:00")
lines = st.lists(st.text(alphabet='abc{}:" 0123', max_size=30), max_size=8).map(
    lambda items: "".join(f"{item}\n" for item in items).encode()
)


def _log(data: bytes, inode: int = 7, path: str = LOG) -> egress_log.LogFile:
    return egress_log.LogFile(path, inode, data)


# ---------------------------------------------------------------- the log delta


@given(old=lines, new=lines, partial=st.text(alphabet="xyz", max_size=5))
def test_a_grown_log_gives_exactly_the_new_complete_lines(
    old: bytes, new: bytes, partial: str
) -> None:
    base = egress_log.position(_log(old))
    delta = egress_log.since(base, _log(old + new + partial.encode()))
    assert delta.log_break is None and delta.data == new
    # the line still being written is read by the next audit, from where this one stopped
    later = egress_log.since(egress_log.position(_log(old + new + partial.encode())),
                             _log(old + new + partial.encode() + b"\n"))  # fmt: skip
    assert later.data == partial.encode() + b"\n"


@given(old=lines.filter(bool), cut=st.integers(min_value=1), new=lines)
def test_a_truncated_log_is_a_break_and_is_read_whole(old: bytes, cut: int, new: bytes) -> None:
    base = egress_log.position(_log(old))
    shorter = old[: max(0, len(old) - cut)]
    delta = egress_log.since(base, _log(shorter))
    assert delta.log_break is not None and "truncated" in delta.log_break
    assert delta.data == shorter[: egress_log.line_end(shorter)]


@given(old=lines.filter(bool), at=st.integers(min_value=0), new=lines)
def test_a_log_rewritten_before_the_offset_is_a_break(old: bytes, at: int, new: bytes) -> None:
    index = at % len(old)
    changed = old[:index] + bytes([old[index] ^ 0x01]) + old[index + 1 :]
    delta = egress_log.since(egress_log.position(_log(old)), _log(changed + new))
    assert delta.log_break is not None and "rewritten" in delta.log_break


@given(old=lines, tail=lines, new=lines)
def test_a_rotated_log_is_continued_in_the_rotated_file(
    old: bytes, tail: bytes, new: bytes
) -> None:
    base = egress_log.position(_log(old))
    rotated = _log(old + tail, inode=7, path=LOG + ".1")
    delta = egress_log.since(base, _log(new, inode=8), rotated)
    assert delta.log_break is None and delta.data == tail + new
    cut = egress_log.since(base, _log(new, inode=8), _log(old + tail + b"{cut", path=LOG + ".1"))
    assert cut.data == tail + b"{cut\n" + new
    gone = egress_log.since(base, _log(new, inode=8), None)
    assert gone.log_break is not None and "rotated away" in gone.log_break
    assert gone.data == new


def test_read_since_follows_the_real_files(tmp_path: Path) -> None:
    log = tmp_path / "egress.json"
    log.write_text(record("198.51.100.7", 443) + "\n")
    first = egress_log.read_since(log, None)
    assert len(first.recording.attempts) == 1 and first.position is not None
    with log.open("a") as handle:
        handle.write(record("198.51.100.8", 443) + "\n" + record("198.51.100.9", 44)[:20])
    second = egress_log.read_since(log, first.position)
    assert [a.destination for a in second.recording.attempts] == ["198.51.100.8"]
    assert second.log_break is None and second.recording.read_from.startswith("offset")
    log.rename(tmp_path / "egress.json.1")  # logrotate: rename, create, SIGHUP
    log.write_text(record("198.51.100.10", 443) + "\n")
    third = egress_log.read_since(log, second.position)
    assert third.log_break is None and third.recording.unparsable_lines == 1
    assert [a.destination for a in third.recording.attempts] == ["198.51.100.10"]
    log.write_text("")
    assert "truncated" in (egress_log.read_since(log, third.position).log_break or "")


# ---------------------------------------------------------------- continuity gaps


def _state(**changes: object) -> RecorderState:
    state = RecorderState(
        source=SOURCE, read_at="2026-12-01T02:30:00.000000+00:00", boot_id="boot-a",
        skuid="999", rule=RULE, packets=10, bytes=600, logger=LOGGER,
        log=egress_log.position(_log(b"")), recorded_packets=0,
    )  # fmt: skip
    return dataclasses.replace(state, **changes)  # type: ignore[arg-type]


NEXT_NIGHT = "2026-12-02T02:30:00.000000+00:00"


@given(before=st.integers(min_value=0, max_value=10**9), gained=st.integers(0, 10**6))
def test_a_counter_that_grew_by_what_was_recorded_is_continuous(before: int, gained: int) -> None:
    now = _state(read_at=NEXT_NIGHT, packets=before + gained, recorded_packets=gained)
    assert net_continuity.gaps(_state(packets=before), now, None) == []


@given(before=st.integers(min_value=1, max_value=10**9), drop=st.integers(min_value=1))
def test_a_counter_lower_than_the_baseline_is_a_reset(before: int, drop: int) -> None:
    now = _state(read_at=NEXT_NIGHT, packets=max(0, before - drop))
    found = net_continuity.gaps(_state(packets=before), now, None)
    assert any("counter was reset" in g.detail and g.restarted for g in found)


@given(gained=st.integers(1, 10**6), recorded=st.integers(0, 10**6))
def test_packets_counted_but_not_recorded_are_a_gap(gained: int, recorded: int) -> None:
    now = _state(read_at=NEXT_NIGHT, packets=10 + gained, recorded_packets=recorded)
    found = net_continuity.gaps(_state(), now, None)
    assert any("not in the log" in g.detail for g in found) == (gained > recorded)


@given(back=st.integers(min_value=1, max_value=10**8))
def test_a_clock_that_went_back_cannot_prove_anything(back: int) -> None:
    earlier = f"2026-12-01T02:29:{59 - back % 60:02d}.000000+00:00"
    earlier = earlier if back < 60 else "2025-01-01T00:00:00.000000+00:00"
    found = net_continuity.gaps(_state(), _state(read_at=earlier), None)
    assert any(not g.provable for g in found)
    result = net_continuity.egress_recording_continuous(_continuity(_state(read_at=earlier)))
    assert result.status is Status.ERROR and "clock went back" in result.summary


def test_each_restart_is_named_with_its_time() -> None:
    cases = {
        "reloaded": _state(
            rule=dataclasses.replace(RULE, table_handle=9, rule_handle=4), packets=0
        ),
        "rebooted": _state(boot_id="boot-b", packets=0),
        "recorder restarted at 2026-12-01T23:00": _state(
            logger=LoggerIdentity(913, "ulogd", "2026-12-01T23:00:00.000+00:00")
        ),
        "changed": _state(rule=dataclasses.replace(RULE, digest="e" * 64)),
        "nothing listens": _state(logger=None),
    }
    for word, now in cases.items():
        result = net_continuity.egress_recording_continuous(
            _continuity(dataclasses.replace(now, read_at=NEXT_NIGHT))
        )
        assert result.status is Status.FAIL, (word, result)
        assert result.summary.startswith("recording restarted since the previous audit"), result
        assert word in result.summary and "2026-12-01T02:31:00" in result.summary, result


# ---------------------------------------------------------------- OG-NET-07 on facts


def _continuity(
    now: RecorderState,
    before: RecorderState | None = None,
    previous: PreviousAudit | None = None,
    log_break: str | None = None,
) -> Facts:
    before = _state() if before is None else before
    previous = previous or PreviousAudit("/h", 3, "2026-12-01T02:31:00+00:00", (before,))
    source = RecordedSource(now, before if previous.states else None, log_break)
    recording = EgressRecording(LOG, True, (), 0, 7, listening_groups=(GROUP,))
    rules = (NftRule("inet", "offgrid_egress", "output", 4, None, "999", "reject", 0, 0, "r"),)
    return facts(egress=EgressFacts(rules, None, None, recording, previous, (source,)))


def test_continuous_recording_passes_and_says_since_when() -> None:
    now = _state(read_at=NEXT_NIGHT, packets=12, recorded_packets=2)
    result = net_continuity.egress_recording_continuous(_continuity(now))
    assert result.status is Status.PASS and "entry 3" in result.summary, result
    values = {e.label: e.value for e in result.evidence}
    assert values["counter"] == "10 -> 12 packets"


def test_first_night_and_no_history_are_said_as_such() -> None:
    first = PreviousAudit("/var/lib/offgrid/history", None, None)
    result = net_continuity.egress_recording_continuous(_continuity(_state(), previous=first))
    assert result.status is Status.NOT_APPLICABLE and result.summary.startswith("first night")
    none = dataclasses.replace(_continuity(_state()).egress, previous=None)  # type: ignore[type-var]
    unjudged = net_continuity.egress_recording_continuous(facts(egress=none))
    assert unjudged.status is Status.NOT_APPLICABLE and "--history" in unjudged.summary


def test_a_broken_log_fails_as_broken() -> None:
    now = _state(read_at=NEXT_NIGHT)
    result = net_continuity.egress_recording_continuous(
        _continuity(now, log_break="the log was truncated: 0 bytes, the previous audit had read 9")
    )
    assert result.status is Status.FAIL and result.summary.startswith("recording broken")


def test_an_unusable_baseline_is_an_error_not_a_pass() -> None:
    bad = PreviousAudit("/h", None, None, error="the history is tampered: entry 2: ...")
    result = net_continuity.egress_recording_continuous(_continuity(_state(), previous=bad))
    assert result.status is Status.ERROR and "tampered" in result.summary


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=200)
@given(field=st.sampled_from(["source", "read_at", "boot_id", "skuid", "rule", "packets", "bytes",
                              "logger", "log", "recorded_packets"]), value=json_values)  # fmt: skip
def test_a_corrupt_baseline_is_refused_never_half_read(field: str, value: object) -> None:
    good = dataclasses.asdict(_state())
    corrupt = good | {field: value}
    try:
        state = recorder_state(corrupt)
    except ValueError:
        return
    # accepted only when it is a faithful, well-typed state
    assert dataclasses.asdict(state) == corrupt


# ---------------------------------------------------------------- OG-NET-05 since the baseline


def test_a_probe_shaped_attempt_outside_this_audits_window_is_an_attempt() -> None:
    probe = ProbeResult("192.0.2.10:22", "blocked", "refused", True, "/x", 999, 999, 64999,
                        "2026-12-01T22:06:01.000000+00:00",
                        "2026-12-01T22:06:02.000000+00:00")  # fmt: skip
    inside = record("192.0.2.10", 22, sport=64999, sec=BASE_SEC)
    outside = record("192.0.2.10", 22, sport=64999, sec=BASE_SEC - 3600)
    attempts, _ = egress_log.parse(inside + "\n" + outside)
    recording = EgressRecording(LOG, True, attempts, 1, 7, 0, None, (GROUP,), (GROUP,))
    rules = (
        NftRule("inet", "t", "output", 3, None, "999", None, None, None, "log", log_group=GROUP),
        NftRule("inet", "t", "output", 4, None, "999", "reject", 2, 120, "reject"),
    )
    source = RecordedSource(_state(), _state(), None)
    previous = PreviousAudit("/h", 3, "2026-12-01T02:31:00+00:00", (_state(),))
    egress = EgressFacts(rules, None, probe, recording, previous, (source,))
    result = net.no_recorded_egress_attempt(facts(egress=egress))
    assert result.status is Status.FAIL and result.summary.startswith("1 egress attempt(s)")
    assert "since the previous audit" in result.summary
    window = {e.label: e.value for e in result.evidence}["the audit's own probe window"]
    assert "2026-12-01T22:06:01" in window and "64999" in window


def test_without_a_probe_address_enforcement_is_unverified_an_error() -> None:
    result = net.egress_enforcement_present(facts())
    assert result.status is Status.ERROR and "unverified" in result.summary


# ---------------------------------------------------------------- the baseline in the report


def _report_with(state: RecorderState, finished: str) -> dict[str, object]:
    egress = EgressFacts((), None, None, EgressRecording(LOG, True, ()), None,
                         (RecordedSource(state, None),))  # fmt: skip
    extra = ExtraSection(egress_recording=recording_sections(egress))
    report = dataclasses.replace(sample_report(), extra=extra, finished_at=finished)
    return to_dict(report)


def test_the_baseline_round_trips_through_the_report() -> None:
    data = _report_with(_state(), "2026-12-01T02:31:00.000+00:00")
    assert validate(json.loads(json.dumps(data))) == []
    loaded = from_dict(json.loads(json.dumps(data)))
    assert loaded.extra.egress_recording is not None
    assert loaded.extra.egress_recording[0].state == _state()
    assert baseline.states_from_report(data) == (_state(),)


def test_the_previous_report_of_this_host_is_the_baseline(tmp_path: Path) -> None:
    directory = tmp_path / "history"
    host = str(_report_with(_state(), "x")["host"]["hostname"])  # type: ignore[index]
    assert baseline.previous_audit(directory, host).entry is None  # no history yet: first night
    directory.mkdir(mode=0o700)  # the role creates it empty, without a key
    empty = baseline.previous_audit(directory, host)
    assert empty.entry is None and empty.error is None, empty
    history.append(directory, _report_with(_state(packets=1), "2026-11-30T02:31:00.000+00:00"))
    history.append(directory, _report_with(_state(packets=7), "2026-12-01T02:31:00.000+00:00"))
    found = baseline.previous_audit(directory, host)
    assert found.error is None and found.entry == 2 and found.states[0].packets == 7
    assert baseline.previous_audit(directory, "another-host").entry is None
    report = next((directory / "reports").glob("000002-*.json"))
    report.write_bytes(report.read_bytes().replace(b'"packets":7', b'"packets":0'))
    tampered = baseline.previous_audit(directory, host)
    assert tampered.error is not None and "tampered" in tampered.error
    assert hashlib.sha256(report.read_bytes()).hexdigest()  # the edit is what broke it


# ---------------------------------------------------------------- reading a source's state


def _ruleset(table_handle: int, packets: int, verdict: str = "reject") -> str:
    owner = {"match": {"op": "==", "left": {"meta": {"key": "skuid"}}, "right": 999}}
    counter = {"counter": {"packets": packets, "bytes": packets * 60}}
    rule = {"family": "inet", "table": "offgrid_egress", "chain": "output", "handle": 4,
            "expr": [owner, counter, {verdict: None}]}  # fmt: skip
    table = {"family": "inet", "name": "offgrid_egress", "handle": table_handle}
    return json.dumps({"nftables": [{"table": table}, {"rule": rule}]})


def test_the_table_handle_and_a_counter_free_digest_identify_a_load() -> None:
    (first,) = nft.parse_ruleset(_ruleset(5, 3))
    (grown,) = nft.parse_ruleset(_ruleset(5, 90))
    (reloaded,) = nft.parse_ruleset(_ruleset(9, 0))
    (changed,) = nft.parse_ruleset(_ruleset(5, 3, verdict="drop"))
    assert first.table_handle == 5 and reloaded.table_handle == 9
    assert first.table_digest == grown.table_digest == reloaded.table_digest
    assert changed.table_digest != first.table_digest


def test_the_recorder_is_found_from_the_kernels_tables(tmp_path: Path) -> None:
    nflog = tmp_path / "nfnetlink_log"
    nflog.write_text(f" {GROUP}  4001     0 2 65531    100  1\n")
    netlink = tmp_path / "netlink"
    netlink.write_text(
        "sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n"
        "ffff8881 0   4001       00000000 0        0        0     2        0        111\n"
        "ffff8882 12  4001       00000000 0        0        0     2        0        222\n"
    )
    assert recorder.listener_ports(nflog) == {GROUP: 4001}
    assert recorder.netlink_inode(4001, netlink) == 222  # the netfilter socket, not another
    assert recorder.netlink_inode(4002, netlink) is None
    assert recorder.listener_ports(tmp_path / "missing") == {}
    boot = tmp_path / "boot_id"
    boot.write_text("d87cd9a3-9f4a-47db-a8f5-0d9473cc1a88\n")
    assert recorder.boot_id(boot) == "d87cd9a3-9f4a-47db-a8f5-0d9473cc1a88"
    assert recorder.boot_id(tmp_path / "none") is None

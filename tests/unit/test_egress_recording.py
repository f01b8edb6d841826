"""The recorder's JSON lines (ulogd2 on NFLOG) and OG-NET-05 on recorded facts."""

from __future__ import annotations

import json
from pathlib import Path

from auditor.checks import net
from auditor.inventory import egress_log
from auditor.inventory.egress_probe import PROBE_SOURCE_PORT
from auditor.inventory.interface import (
    EgressFacts,
    EgressRecording,
    Facts,
    NftRule,
    ProbeResult,
)
from auditor.verdicts import Status
from tests.unit.audit_facts import facts

GROUP = 7411
BASE_SEC = 1796162761  # 2026-12-01T22:06:01Z


def record(
    dest: str, dport: int, *, proto: int = 6, sport: int = 40000, sec: int = BASE_SEC,
    prefix: str = "offgrid-egress ", uid: int = 999,
) -> str:  # fmt: skip
    family = 10 if ":" in dest else 2
    return json.dumps({
        "timestamp": "2026-12-01T22:06:01.884989", "oob.prefix": prefix, "oob.time.sec": sec,
        "oob.time.usec": 884989, "oob.family": family, "oob.uid": uid, "oob.gid": uid,
        "ip.protocol": proto, "src_port": sport, "dest_port": dport,
        "src_ip": "2001:db8::2" if family == 10 else "192.0.2.2", "dest_ip": dest,
    })  # fmt: skip


def test_packets_become_attempts_with_kernel_time_destination_and_uid() -> None:
    lines = [
        record("198.51.100.7", 443),
        record("198.51.100.7", 443, sec=BASE_SEC + 1),  # the SYN retransmitted: same attempt
        record("198.51.100.7", 443, sport=40001),  # a new connection: a new attempt
        record("2001:db8::9", 53, proto=17),
        record("198.51.100.7", 443, prefix="other "),  # another rule's packets: not ours
        "not json",
        json.dumps({"dest_ip": "198.51.100.7"}),  # no kernel time: not trusted
    ]
    attempts, bad = egress_log.parse("\n".join(lines))
    assert bad == 2
    assert [(a.protocol, a.destination, a.destination_port, a.packets) for a in attempts] == [
        ("tcp", "198.51.100.7", 443, 2), ("tcp", "198.51.100.7", 443, 1),
        ("udp", "2001:db8::9", 53, 1),
    ]  # fmt: skip
    first = attempts[0]
    assert first.time == "2026-12-01T22:06:01.884989+00:00" and first.uid == 999
    assert first.family == "ipv4" and attempts[2].family == "ipv6"


def test_same_flow_far_apart_is_two_attempts() -> None:
    late = BASE_SEC + int(egress_log.SAME_ATTEMPT_S) + 60
    attempts, _ = egress_log.parse(
        record("198.51.100.7", 443) + "\n" + record("198.51.100.7", 443, sec=late)
    )
    assert len(attempts) == 2


def test_read_bounds_and_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    log = tmp_path / "egress.json"
    assert not egress_log.read(log).exists
    log.write_text(record("198.51.100.7", 443) + "\n")
    found = egress_log.read(log, (GROUP,))
    assert found.exists and found.error is None and len(found.attempts) == 1
    assert found.size == log.stat().st_size and found.nflog_groups == (GROUP,)
    link = tmp_path / "link.json"
    link.symlink_to(log)
    assert egress_log.read(link).error is not None  # never followed
    assert egress_log.read(tmp_path).error is not None


def test_listening_groups_from_the_kernel_table(tmp_path: Path) -> None:
    table = tmp_path / "nfnetlink_log"
    table.write_text(" 7411  25309     0 2 65531    100  1\n    0    881     0 2 65535    100  1\n")
    assert egress_log.listening_groups(table) == (7411, 0)
    assert egress_log.listening_groups(tmp_path / "missing") is None


RULES = (
    NftRule("inet", "offgrid_egress", "output", 3, "OG-NET-05", "999", None, None, None,
            "log", log_group=GROUP),
    NftRule("inet", "offgrid_egress", "output", 4, "OG-NET-04", "999", "reject", 5, 300,
            "reject"),
)  # fmt: skip


def _facts(
    lines: list[str],
    *,
    listening: tuple[int, ...] | None = (GROUP,),
    probe: ProbeResult | None = None,
    rules: tuple[NftRule, ...] = RULES,
) -> Facts:
    attempts, bad = egress_log.parse("\n".join(lines))
    recording = EgressRecording("/var/log/offgrid-egress/egress.json", True, attempts, 100, 7,
                                bad, None, (GROUP,), listening)  # fmt: skip
    return facts(egress=EgressFacts(rules, None, probe, recording))


def test_attempts_fail_with_each_destination_and_time() -> None:
    result = net.no_recorded_egress_attempt(
        _facts([record("198.51.100.7", 443, sport=40000 + i) for i in range(5)])
    )
    assert result.status is Status.FAIL
    assert result.summary.startswith("5 egress attempt(s)") and "198.51.100.7:443" in result.summary
    listed = [e.value for e in result.evidence if e.label == "attempt"]
    assert len(listed) == 5 and all("2026-12-01T22:06:01" in line for line in listed)


def test_nothing_recorded_passes_only_with_a_listening_recorder() -> None:
    assert net.no_recorded_egress_attempt(_facts([])).status is Status.PASS
    deaf = net.no_recorded_egress_attempt(_facts([], listening=()))
    assert deaf.status is Status.FAIL and "nothing listens" in deaf.summary
    assert net.no_recorded_egress_attempt(_facts([], listening=None)).status is Status.ERROR
    no_rule = net.no_recorded_egress_attempt(_facts([], rules=RULES[1:]))
    assert no_rule.status is Status.FAIL and "NFLOG" in no_rule.summary


def test_the_audits_probe_is_not_an_attempt() -> None:
    probe = ProbeResult("192.0.2.10:22", "blocked", "refused", True, "/x", 999, 999, 51000)
    lines = [
        record("192.0.2.10", 22, sport=PROBE_SOURCE_PORT),  # an earlier night's probe
        record("192.0.2.10", 22, sport=51000),  # this night's, from a fallback port
    ]
    assert net.no_recorded_egress_attempt(_facts(lines, probe=probe)).status is Status.PASS
    mimic = [record("192.0.2.10", 22, sport=PROBE_SOURCE_PORT, proto=17)]  # not the probe's TCP
    assert net.no_recorded_egress_attempt(_facts(mimic, probe=probe)).status is Status.FAIL
    assert net.no_recorded_egress_attempt(_facts(lines[:1])).status is Status.FAIL  # no probe now


def test_not_configured_does_not_apply() -> None:
    result = net.no_recorded_egress_attempt(facts())
    assert result.status is Status.NOT_APPLICABLE and "--egress-log" in result.summary

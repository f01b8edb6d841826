"""OG-NET checks on recorded facts."""

from __future__ import annotations

import dataclasses

from auditor.checks import net
from auditor.inventory.interface import EgressFacts, NftRule, ProbeResult
from auditor.verdicts import Status
from tests.unit.audit_facts import ENGINE_PID, RUNNER_PID, USER, engine, facts, sock


def test_loopback_listener_passes() -> None:
    assert net.engine_listens_on_loopback(facts()).status is Status.PASS


def test_wildcard_listener_fails_with_the_socket_as_evidence() -> None:
    result = net.engine_listens_on_loopback(facts(sockets=(sock("0.0.0.0", 11434),)))
    assert result.status is Status.FAIL
    assert "0.0.0.0:11434" in result.summary


def test_ipv6_wildcard_and_udp_bound_in_runner_fail() -> None:
    for bad in (
        sock("::", 11434),
        sock("0.0.0.0", 5353, pid=RUNNER_PID, protocol="udp", state="NONE"),
    ):
        result = net.engine_listens_on_loopback(facts(sockets=(sock("::1", 11434), bad)))
        assert result.status is Status.FAIL, bad


def test_configured_non_loopback_bind_fails_even_if_bound_to_loopback() -> None:
    result = net.engine_listens_on_loopback(facts(engine=engine(listen_host="0.0.0.0")))
    assert result.status is Status.FAIL


def test_no_engine_or_not_running_is_error() -> None:
    assert net.engine_listens_on_loopback(facts(engine=None)).status is Status.ERROR
    stopped = facts(engine=engine(main=None, tree=()))
    assert net.engine_listens_on_loopback(stopped).status is Status.ERROR


def test_other_listener_on_engine_port() -> None:
    clean = facts(sockets=(sock("127.0.0.1", 11434),))
    assert net.nothing_else_on_engine_port(clean).status is Status.PASS
    proxy = facts(sockets=(sock("127.0.0.1", 11434), sock("0.0.0.0", 11434, pid=77)))
    result = net.nothing_else_on_engine_port(proxy)
    assert result.status is Status.FAIL and "pid 77" in result.summary


def test_unowned_listener_without_root_is_error() -> None:
    hidden = facts(privilege=USER, sockets=(sock("0.0.0.0", 11434, pid=None),))
    assert net.nothing_else_on_engine_port(hidden).status is Status.ERROR


def test_remote_connection_from_runner_fails_and_loopback_ones_pass() -> None:
    local = sock("127.0.0.1", 50000, state="ESTABLISHED", remote="127.0.0.1", rport=11434)
    assert net.no_remote_connection_from_engine(facts(sockets=(local,))).status is Status.PASS
    remote = sock("10.0.0.5", 50001, pid=RUNNER_PID, state="SYN_SENT", remote="34.1.2.3", rport=443)
    result = net.no_remote_connection_from_engine(facts(sockets=(local, remote)))
    assert result.status is Status.FAIL
    assert any("34.1.2.3" in e.value for e in result.evidence)


def test_connection_seen_only_by_watch_fails() -> None:
    short = sock("10.0.0.5", 50002, state="ESTABLISHED", remote="2001:db8::1", rport=443)
    result = net.no_remote_connection_from_engine(facts(watched_sockets=(short,)))
    assert result.status is Status.FAIL
    assert any(e.label == "connection (watch)" for e in result.evidence)


def test_other_process_connection_is_not_the_engines() -> None:
    browser = sock("10.0.0.5", 50003, pid=555, state="ESTABLISHED", remote="34.1.2.3", rport=443)
    assert net.no_remote_connection_from_engine(facts(sockets=(browser,))).status is Status.PASS


def test_unowned_remote_connection_without_root_is_error() -> None:
    hidden = sock("10.0.0.5", 50004, pid=None, state="ESTABLISHED", remote="34.1.2.3", rport=443)
    result = net.no_remote_connection_from_engine(facts(privilege=USER, sockets=(hidden,)))
    assert result.status is Status.ERROR


def _nft(skuid: str, verdict: str = "drop", packets: int | None = 7) -> EgressFacts:
    rule = NftRule(
        "inet",
        "offgrid_egress",
        "output",
        3,
        "OG-NET-04",
        skuid,
        verdict,
        packets,
        420 if packets is not None else None,
        f"meta skuid == {skuid} counter {verdict}",
    )
    return EgressFacts(nft_rules=(rule,), nft_error=None, probe=None)


def test_egress_from_systemd_without_probe_is_unverified_not_a_pass() -> None:
    result = net.egress_enforcement_present(facts())
    assert result.status is Status.ERROR
    assert "unverified" in result.summary


def test_egress_settings_without_running_systemd_do_not_count() -> None:
    result = net.egress_enforcement_present(facts(systemd_running=False))
    assert result.status is Status.FAIL


def test_egress_missing_fails() -> None:
    unit = dataclasses.replace(engine().unit, properties={"MainPID": str(ENGINE_PID)})  # type: ignore[arg-type]
    assert net.egress_enforcement_present(facts(engine=engine(unit=unit))).status is Status.FAIL


def test_allowing_more_than_loopback_is_not_enforcement() -> None:
    props = {"MainPID": str(ENGINE_PID), "IPAddressDeny": "any", "IPAddressAllow": "0.0.0.0/0"}
    unit = dataclasses.replace(engine().unit, properties=props)  # type: ignore[arg-type]
    assert net.egress_enforcement_present(facts(engine=engine(unit=unit))).status is Status.FAIL


def test_egress_from_nft_rule_for_service_user_with_counter() -> None:
    no_unit = engine(unit=None)
    # configured, not yet proven by a probe: unverified (error), but recognised as configured
    for user in ("999", "ollama"):
        result = net.egress_enforcement_present(facts(engine=no_unit, egress=_nft(user)))
        assert result.status is Status.ERROR and "restricted by nftables" in result.summary
    other_user = facts(engine=no_unit, egress=_nft("1234"))
    assert net.egress_enforcement_present(other_user).status is Status.FAIL
    no_counter = facts(engine=no_unit, egress=_nft("999", packets=None))
    assert net.egress_enforcement_present(no_counter).status is Status.FAIL
    accept = facts(engine=no_unit, egress=_nft("999", verdict="accept"))
    assert net.egress_enforcement_present(accept).status is Status.FAIL


def _probe(outcome: str) -> EgressFacts:
    probe = ProbeResult("192.0.2.1:80", outcome, "detail", True, "/sys/fs/cgroup/x", 999, 999)
    return EgressFacts(nft_rules=(), nft_error=None, probe=probe)


def test_probe_decides_enforcement() -> None:
    assert net.egress_enforcement_present(facts(egress=_probe("blocked"))).status is Status.PASS
    leaked = net.egress_enforcement_present(facts(egress=_probe("connected")))
    assert leaked.status is Status.FAIL and "NOT enforced" in leaked.summary
    assert net.egress_enforcement_present(facts(egress=_probe("error"))).status is Status.ERROR

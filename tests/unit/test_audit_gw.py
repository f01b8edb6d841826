"""The OG-GW checks on recorded gateway facts: each passes on a sound gateway, fails on the
fault it exists for, and is an error (never a pass) when its probe had no answer."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from auditor.checks.gw import (
    access_log_without_bodies,
    certificate_not_expiring,
    debug_routes_unreachable,
    engine_only_through_gateway,
    management_refused_with_credential,
    team_refuses_unauthenticated,
    tls_protocol_floor,
)
from auditor.checks.interface import CheckFn
from auditor.inventory.interface import (
    AccessLogProbe,
    Facts,
    GatewayFacts,
    GatewayProbe,
    GatewayTls,
    TlsHandshake,
)
from auditor.verdicts import Status
from tests.unit.audit_facts import ENGINE_PID, engine, facts, sock

ALL: tuple[CheckFn, ...] = (
    team_refuses_unauthenticated, management_refused_with_credential, debug_routes_unreachable,
    tls_protocol_floor, certificate_not_expiring, engine_only_through_gateway,
    access_log_without_bodies,
)  # fmt: skip
MANAGEMENT = ("/api/pull", "/api/push", "/api/create", "/api/copy", "/api/delete")
DEBUG = ("/debug/pprof/", "/debug/pprof/heap")


def probe(
    listener: str, path: str, status: int | None, credential: str = "none", **kw: Any
) -> GatewayProbe:
    method = "GET" if path in DEBUG or path == "/api/version" else "POST"
    return GatewayProbe(listener, method, path, credential, status, kw.get("marked", True),
                        None if status is not None else "ConnectionRefusedError")  # fmt: skip


def listener_probes(listener: str, credential: str) -> list[GatewayProbe]:
    return [
        probe(listener, "/api/version", 200, credential),
        *(probe(listener, path, 403, credential) for path in MANAGEMENT + DEBUG),
    ]


def good(**changes: Any) -> GatewayFacts:
    probes = [
        *listener_probes("local", "none"),
        probe("team", "/api/version", 401),
        probe("team", "/api/version", 401, "invalid"),
        probe("team", "/api/pull", 401),
        *listener_probes("team", "audit"),
    ]
    handshakes = (
        TlsHandshake("TLSv1", "refused", "TLSV1_ALERT_PROTOCOL_VERSION"),
        TlsHandshake("TLSv1.1", "refused", "TLSV1_ALERT_PROTOCOL_VERSION"),
        TlsHandshake("TLSv1.2", "accepted", "TLSv1.2"),
        TlsHandshake("TLSv1.3", "accepted", "TLSv1.3"),
    )
    log = AccessLogProbe(
        "/var/log/offgrid-gateway/access.log", probe("local", "/api/show", 404), 1,
        ("listener", "method", "response_bytes", "route", "status", "user"), (),
    )  # fmt: skip
    base = GatewayFacts(
        descriptor="/etc/offgrid-gateway/gateway.json", error=None, engine="ollama",
        local_listen="127.0.0.1:11434", team_listen="0.0.0.0:11443", probes=tuple(probes),
        tls=GatewayTls(handshakes, "2027-06-01T00:00:00+00:00"), access_log=log,
        bypass=(probe("127.0.0.1:22", "/api/version", None),),
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def sealed(gateway: GatewayFacts | None, **changes: Any) -> Facts:
    """The machine of audit_facts with the engine in its own namespace."""
    return facts(gateway=gateway, engine=engine(foreign_netns=True), sockets=(), **changes)


def replace_probe(
    gw: GatewayFacts, listener: str, path: str, credential: str, new: GatewayProbe
) -> GatewayFacts:
    probes = tuple(
        new if (p.listener, p.path, p.credential) == (listener, path, credential) else p
        for p in gw.probes
    )
    assert probes != gw.probes
    return dataclasses.replace(gw, probes=probes)


def test_a_sound_gateway_passes_every_control() -> None:
    for fn in ALL:
        assert fn(sealed(good())).status == Status.PASS, fn(sealed(good()))


def test_no_gateway_makes_every_control_not_applicable() -> None:
    assert {fn(sealed(None)).status for fn in ALL} == {Status.NOT_APPLICABLE}


def test_an_unreadable_description_is_an_error() -> None:
    broken = GatewayFacts(
        "/etc/offgrid-gateway/gateway.json", "not an offgrid-gateway/1 description"
    )
    assert {fn(sealed(broken)).status for fn in ALL} == {Status.ERROR}


def test_team_controls_do_not_apply_in_local_mode() -> None:
    local = dataclasses.replace(
        good(), team_listen=None, tls=None,
        probes=tuple(p for p in good().probes if p.listener == "local"),
    )  # fmt: skip
    statuses = {fn.__name__: fn(sealed(local)).status for fn in ALL}
    assert statuses["team_refuses_unauthenticated"] == Status.NOT_APPLICABLE
    assert statuses["tls_protocol_floor"] == Status.NOT_APPLICABLE
    assert statuses["certificate_not_expiring"] == Status.NOT_APPLICABLE
    assert statuses["management_refused_with_credential"] == Status.PASS


@pytest.mark.parametrize(
    ("status", "verdict"), [(200, Status.FAIL), (502, Status.FAIL), (None, Status.ERROR)]
)
def test_og_gw_01_an_unauthenticated_request_let_through(
    status: int | None, verdict: Status
) -> None:
    gw = replace_probe(
        good(), "team", "/api/version", "none", probe("team", "/api/version", status)
    )
    assert team_refuses_unauthenticated(sealed(gw)).status == verdict


def test_og_gw_02_a_management_route_answered_by_the_engine_fails() -> None:
    gw = replace_probe(good(), "team", "/api/pull", "audit",
                       probe("team", "/api/pull", 404, "audit", marked=False))  # fmt: skip
    assert management_refused_with_credential(sealed(gw)).status == Status.FAIL
    gw = replace_probe(good(), "local", "/api/delete", "none", probe("local", "/api/delete", 200))
    assert management_refused_with_credential(sealed(gw)).status == Status.FAIL


@pytest.mark.parametrize("check", [management_refused_with_credential, debug_routes_unreachable])
def test_og_gw_02_03_an_unaccepted_audit_token_is_an_error(check: CheckFn) -> None:
    gw = replace_probe(good(), "team", "/api/version", "audit",
                       probe("team", "/api/version", 401, "audit"))  # fmt: skip
    assert check(sealed(gw)).status == Status.ERROR
    gw = dataclasses.replace(good(), audit_credential_error="cannot read the audit token")
    assert check(sealed(gw)).status == Status.ERROR


def test_og_gw_03_pprof_through_a_gateway_listener_or_another_listener_fails() -> None:
    gw = replace_probe(
        good(), "local", "/debug/pprof/", "none", probe("local", "/debug/pprof/", 200)
    )
    assert debug_routes_unreachable(sealed(gw)).status == Status.FAIL
    other = probe("127.0.0.1:11435", "/debug/pprof/", 200, marked=False)
    gw = dataclasses.replace(good(), bypass=(other,))
    assert debug_routes_unreachable(sealed(gw)).status == Status.FAIL


@pytest.mark.parametrize(
    ("outcome", "verdict"), [("accepted", Status.FAIL), ("untestable", Status.ERROR)]
)
def test_og_gw_04_tls_1_1(outcome: str, verdict: Status) -> None:
    tls = good().tls
    assert tls is not None
    shakes = tuple(
        TlsHandshake(h.version, outcome, "x") if h.version == "TLSv1.1" else h
        for h in tls.handshakes
    )
    gw = dataclasses.replace(good(), tls=dataclasses.replace(tls, handshakes=shakes))
    assert tls_protocol_floor(sealed(gw)).status == verdict


@pytest.mark.parametrize(
    ("not_after", "verdict"),
    [("2026-12-01T00:00:00+00:00", Status.FAIL), ("2026-12-10T00:00:00+00:00", Status.FAIL),
     ("2026-12-26T00:00:00+00:00", Status.PASS), (None, Status.ERROR)],
)  # fmt: skip
def test_og_gw_05_expiry_within_30_days_fails(not_after: str | None, verdict: Status) -> None:
    tls = good().tls
    assert tls is not None
    gw = dataclasses.replace(good(), tls=dataclasses.replace(tls, not_after=not_after))
    # collected 2026-11-24: 2026-12-26 is 32 days later
    assert certificate_not_expiring(sealed(gw)).status == verdict


def test_og_gw_06_an_engine_listening_here_fails() -> None:
    unsealed = facts(gateway=good(), sockets=(sock("127.0.0.1", 11434, pid=ENGINE_PID),))
    result = engine_only_through_gateway(unsealed)
    assert result.status == Status.FAIL and "engine listener" in result.summary


def test_og_gw_06_a_listener_answering_as_the_engine_fails() -> None:
    direct = probe("127.0.0.1:11435", "/api/version", 200, marked=False)
    gw = dataclasses.replace(good(), bypass=(direct,))
    assert engine_only_through_gateway(sealed(gw)).status == Status.FAIL
    marked = probe("127.0.0.1:11435", "/api/version", 200, marked=True)
    gw = dataclasses.replace(good(), bypass=(marked,))
    assert engine_only_through_gateway(sealed(gw)).status == Status.PASS


def test_og_gw_06_a_gateway_that_does_not_serve_the_engine_is_an_error() -> None:
    gw = replace_probe(good(), "local", "/api/version", "none", probe("local", "/api/version", 502))
    assert engine_only_through_gateway(sealed(gw)).status == Status.ERROR


def test_og_gw_07_leaks_missing_fields_and_unproven_probes() -> None:
    log = good().access_log
    assert log is not None
    cases = [
        (dataclasses.replace(log, leaked=("body",)), Status.FAIL),
        (dataclasses.replace(log, probe_fields=("route", "status", "user")), Status.FAIL),
        (dataclasses.replace(log, probe=probe("local", "/api/show", 403)), Status.ERROR),
        (dataclasses.replace(log, probe_fields=()), Status.ERROR),
        (dataclasses.replace(log, error="cannot read the log"), Status.ERROR),
    ]
    for changed, verdict in cases:
        gw = dataclasses.replace(good(), access_log=changed)
        assert access_log_without_bodies(sealed(gw)).status == verdict, changed

"""OG-GW: the gateway in front of the sealed engine, judged from its answers to requests.

Every fact here is a request the auditor sent (inventory/gateway.py) and what came back.
Without a gateway description nothing applies; a probe without an answer is an error,
never a pass.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from auditor.checks._common import describe_socket, require_engine, tree_pids
from auditor.checks.interface import check
from auditor.inventory.interface import Facts, GatewayFacts, GatewayProbe
from auditor.verdicts import CannotEvaluate, DoesNotApply, Finding, Status, finding

CERT_RENEW_DAYS = 30
VERSION_ROUTES = ("/api/version", "/v1/models")
LOG_FIELDS = ("user", "route", "status")
LOG_BYTES = ("response_bytes", "bytes_sent", "body_bytes_sent", "bytes")


def _gateway(facts: Facts) -> GatewayFacts:
    gw = facts.gateway
    if gw is None:
        raise DoesNotApply(
            "no gateway is configured (role offgrid_gateway writes "
            "/etc/offgrid-gateway/gateway.json; or pass --gateway)"
        )
    if gw.error is not None:
        raise CannotEvaluate(gw.error, [("description", gw.descriptor)])
    return gw


def _team(gw: GatewayFacts) -> str:
    if gw.team_listen is None:
        raise DoesNotApply("team mode is off: the gateway listens on loopback only")
    return gw.team_listen


def _shown(probe: GatewayProbe) -> str:
    answer = str(probe.status) if probe.status is not None else f"no answer ({probe.error})"
    mark = "" if probe.from_gateway or probe.status is None else " (not from the gateway)"
    return f"{probe.method} {probe.path} [{probe.credential}] -> {answer}{mark}"


def _evidence(probes: list[GatewayProbe]) -> list[tuple[str, str]]:
    return [(p.listener, _shown(p)) for p in probes]


def _select(gw: GatewayFacts, listener: str, credential: str) -> list[GatewayProbe]:
    return [p for p in gw.probes if p.listener == listener and p.credential == credential]


def _unanswered(probes: list[GatewayProbe]) -> None:
    silent = [p for p in probes if p.status is None]
    if silent:
        raise CannotEvaluate(f"{len(silent)} probe(s) got no answer", _evidence(silent))


def _management(probes: list[GatewayProbe]) -> list[GatewayProbe]:
    return [p for p in probes if p.path not in VERSION_ROUTES and not p.path.startswith("/debug/")]


def _audit_credential(gw: GatewayFacts) -> list[GatewayProbe]:
    """The team listener's probes with the audit token, once the token is shown to work."""
    if gw.audit_credential_error is not None:
        raise CannotEvaluate(gw.audit_credential_error)
    probes = _select(gw, "team", "audit")
    version = [p for p in probes if p.path in VERSION_ROUTES]
    if not version or version[0].status != 200:
        raise CannotEvaluate(
            "the gateway did not accept the audit token, so what it refuses to a valid "
            "credential is unproven", _evidence(version)
        )  # fmt: skip
    return probes


@check("OG-GW-01")
def team_refuses_unauthenticated(facts: Facts) -> Finding:
    gw = _gateway(facts)
    _team(gw)
    probes = _select(gw, "team", "none") + _select(gw, "team", "invalid")
    if not probes:
        raise CannotEvaluate("the team listener was not probed")
    _unanswered(probes)
    let_in = [p for p in probes if p.status not in (401, 403)]
    if let_in:
        return finding(
            Status.FAIL,
            f"{len(let_in)} request(s) without a valid credential were not refused",
            _evidence(let_in),
        )
    return finding(Status.PASS, "requests without a valid credential get 401", _evidence(probes))


@check("OG-GW-02")
def management_refused_with_credential(facts: Facts) -> Finding:
    gw = _gateway(facts)
    probes = _management(_select(gw, "local", "none"))
    if gw.team_listen is not None:
        probes += _management(_audit_credential(gw))
    if not probes:
        raise CannotEvaluate("no management route was probed")
    _unanswered(probes)
    through = [p for p in probes if p.status != 403 or not p.from_gateway]
    if through:
        return finding(
            Status.FAIL,
            f"{len(through)} management request(s) were not refused by the gateway",
            _evidence(through),
        )
    who = "on loopback and to a valid team credential" if gw.team_listen else "on loopback"
    return finding(Status.PASS, f"every management route gets 403 {who}", _evidence(probes))


@check("OG-GW-03")
def debug_routes_unreachable(facts: Facts) -> Finding:
    gw = _gateway(facts)
    gateway_probes = [p for p in _select(gw, "local", "none") if p.path.startswith("/debug/")]
    if gw.team_listen is not None:
        gateway_probes += [p for p in _audit_credential(gw) if p.path.startswith("/debug/")]
    others = [p for p in gw.bypass if p.path.startswith("/debug/") and p.status is not None]
    if not gateway_probes:
        raise CannotEvaluate("no debug route was probed")
    _unanswered(gateway_probes)
    open_ = [p for p in gateway_probes if p.status != 403 or not p.from_gateway]
    open_ += [p for p in others if 200 <= (p.status or 0) < 300]
    evidence = _evidence(gateway_probes + others)
    if open_:
        return finding(
            Status.FAIL, f"/debug/pprof/ answered through {len(open_)} request(s)",
            _evidence(open_),
        )  # fmt: skip
    return finding(Status.PASS, "/debug/pprof/ is refused on every listener", evidence)


@check("OG-GW-04")
def tls_protocol_floor(facts: Facts) -> Finding:
    gw = _gateway(facts)
    _team(gw)
    if gw.tls is None:
        raise CannotEvaluate("the team listener's TLS was not probed")
    evidence = [(h.version, f"{h.outcome}: {h.detail}") for h in gw.tls.handshakes]
    old = [h for h in gw.tls.handshakes if h.version in ("TLSv1", "TLSv1.1")]
    if any(h.outcome == "accepted" for h in old):
        accepted = ", ".join(h.version for h in old if h.outcome == "accepted")
        return finding(Status.FAIL, f"the team listener accepts {accepted}", evidence)
    if any(h.outcome != "refused" for h in old) or len(old) != 2:
        raise CannotEvaluate("a TLS version below 1.2 could not be offered", evidence)
    if not any(h.outcome == "accepted" for h in gw.tls.handshakes if h not in old):
        raise CannotEvaluate("no TLS 1.2 or 1.3 handshake succeeded", evidence)
    return finding(Status.PASS, "TLS 1.0 and 1.1 are refused; 1.2 or later is served", evidence)


@check("OG-GW-05")
def certificate_not_expiring(facts: Facts) -> Finding:
    gw = _gateway(facts)
    _team(gw)
    if gw.tls is None or gw.tls.not_after is None:
        error = gw.tls.error if gw.tls else "the team listener's TLS was not probed"
        raise CannotEvaluate(error or "the served certificate could not be read")
    expiry = datetime.fromisoformat(gw.tls.not_after)
    left = expiry - datetime.fromisoformat(facts.collected_at)
    evidence = [("notAfter", gw.tls.not_after), ("renew within", f"{CERT_RENEW_DAYS} days")]
    if left <= timedelta(0):
        return finding(Status.FAIL, f"the certificate expired on {gw.tls.not_after}", evidence)
    if left < timedelta(days=CERT_RENEW_DAYS):
        return finding(
            Status.FAIL, f"the certificate expires in {left.days} day(s): renew it", evidence
        )
    return finding(Status.PASS, f"the certificate is valid for {left.days} more days", evidence)


@check("OG-GW-06")
def engine_only_through_gateway(facts: Facts) -> Finding:
    gw = _gateway(facts)
    engine = require_engine(facts, running=True)
    served = [p for p in _select(gw, "local", "none") if p.path in VERSION_ROUTES]
    if not served or served[0].status != 200 or not served[0].from_gateway:
        raise CannotEvaluate(
            "the gateway's local listener does not serve the engine", _evidence(served)
        )
    tree = tree_pids(engine)
    own = [
        s for s in facts.sockets
        if s.protocol == "tcp" and s.state == "LISTEN" and s.pid in tree
    ]  # fmt: skip
    direct = [p for p in gw.bypass if p.path in VERSION_ROUTES and p.status == 200]
    direct = [p for p in direct if not p.from_gateway]
    evidence = [("through the gateway", _shown(served[0]))]
    evidence += [("engine socket here", describe_socket(s)) for s in own]
    evidence += [(p.listener, _shown(p)) for p in gw.bypass if p.path in VERSION_ROUTES]
    if own or direct:
        what = f"{len(own)} engine listener(s) in this namespace" if own else ""
        what += (", " if own and direct else "") + (
            f"{len(direct)} listener(s) answering as the engine" if direct else ""
        )
        return finding(Status.FAIL, f"the engine is reachable around the gateway: {what}", evidence)
    return finding(
        Status.PASS,
        f"the engine answers only through the gateway ({len(gw.bypass) // 2} other "
        "listener(s) that could lead to it were asked)",
        evidence,
    )


@check("OG-GW-07")
def access_log_without_bodies(facts: Facts) -> Finding:
    gw = _gateway(facts)
    log = gw.access_log
    if log is None:
        raise CannotEvaluate("the access log was not probed")
    if log.error is not None:
        raise CannotEvaluate(log.error, [("access log", log.path)])
    evidence = [
        ("access log", log.path),
        ("probe", _shown(log.probe)),
        ("fields of its line", ", ".join(log.probe_fields) or "(line not found)"),
    ]
    if log.leaked:
        where = ", ".join(log.leaked)
        return finding(Status.FAIL, f"the access log recorded the request's {where}", evidence)
    if log.probe.status is None or log.probe.status in (401, 403, 413):
        raise CannotEvaluate(
            "the marked request did not reach the engine, so its body could not have been "
            "logged", evidence
        )  # fmt: skip
    if not log.probe_fields:
        raise CannotEvaluate("the probe's line was not found in the access log", evidence)
    missing = [f for f in LOG_FIELDS if f not in log.probe_fields]
    if not any(f in log.probe_fields for f in LOG_BYTES):
        missing.append("bytes")
    if missing:
        return finding(
            Status.FAIL, f"the access log does not record {', '.join(missing)}", evidence
        )
    return finding(
        Status.PASS,
        "the access log records who, route, status and bytes, and no body, query or credential",
        evidence,
    )

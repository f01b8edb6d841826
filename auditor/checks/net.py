"""OG-NET: exposure and egress of the engine's process tree."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psutil

from auditor.checks import _gateway_chain as gateway_chain
from auditor.checks import _sealed
from auditor.checks._common import (
    EngineView,
    describe_socket,
    engine_namespace,
    engine_view,
    is_bound,
    require_engine,
    tree_pids,
)
from auditor.checks._exposure import Publication, container_addresses, host_exposure
from auditor.checks._paths import InterfaceVerdict, describe_interface, describe_route, judge
from auditor.checks.interface import check
from auditor.inventory.egress_probe import PROBE_SOURCE_PORT
from auditor.inventory.interface import (
    EgressAttempt,
    EgressRecording,
    EngineFacts,
    Facts,
    NamespaceFacts,
    NftRule,
    PreviousAudit,
    ProbeResult,
    RecordedSource,
    SealedRecording,
    SocketFact,
)
from auditor.inventory.sockets import is_loopback
from auditor.verdicts import CannotEvaluate, DoesNotApply, Finding, Status, finding


def _describe_in(sock: SocketFact, view: EngineView) -> str:
    return describe_socket(sock) + view.where()


def _exposed_text(sock: SocketFact, view: EngineView) -> str:
    """The engine's non-loopback listener; for a foreign one, the addresses it answers on."""
    if not view.foreign or view.space is None:
        return describe_socket(sock)
    answers = container_addresses(sock, view.space)
    on = ", ".join(answers) if answers else "no address yet"
    return f"{sock.local_address}:{sock.local_port}{view.where()} (container address(es) {on})"


def _loopback_summary(
    view: EngineView, count: int, published: list[Publication], gateways: list[str]
) -> str:
    if not view.foreign:
        return f"the engine listens on loopback only ({count})"
    note = "; published on loopback only" if published else "; not published by the host"
    if gateways:
        note += f"; reached from the host through its gateway on {', '.join(gateways)} (OG-GW)"
    return f"the engine listens on loopback only{view.where()} ({count}){note}"


def _gateway_listeners(facts: Facts, view: EngineView) -> list[tuple[SocketFact, str]]:
    """Host-side listeners proved to be the sealed engine's gateway, with the proof."""
    if not view.foreign or facts.gateway_chain is None:
        return []
    tree = tree_pids(view.engine)
    found = []
    for s in facts.sockets:
        if s.protocol == "tcp" and s.state == psutil.CONN_LISTEN and s.pid not in tree:
            chain = gateway_chain.relate(s, facts, view)
            if chain.proved:
                found.append((s, chain.text))
    return found


@check("OG-NET-01")
def engine_listens_on_loopback(facts: Facts) -> Finding:
    view = engine_view(facts)
    engine = view.engine
    pids = tree_pids(engine)
    bound = [s for s in view.sockets if s.pid in pids and is_bound(s)]
    exposed = [s for s in bound if not is_loopback(s.local_address)]
    evidence = [("listening", _describe_in(s, view)) for s in bound]
    evidence.append(("configured bind address", str(engine.listen_host)))
    reach = host_exposure(facts, view)
    evidence += [("published on the host", f"{p.host} by {p.how}") for p in reach.publications]
    evidence += [("may publish the engine", text) for text in reach.unknown]
    public = [p for p in reach.publications if not p.loopback_only]
    gateways = _gateway_listeners(facts, view)
    evidence += [("through the engine's gateway", f"{describe_socket(s)}: {how}")
                 for s, how in gateways]  # fmt: skip
    if exposed or public:
        parts = []
        if exposed:
            parts.append(
                f"the engine listens on {len(exposed)} non-loopback address(es): "
                + ", ".join(_exposed_text(s, view) for s in exposed)
            )
        if public:
            parts.append(
                "the host publishes it on " + ", ".join(f"{p.host} ({p.how})" for p in public)
            )
        return finding(Status.FAIL, "; ".join(parts), evidence)
    if engine.listen_host is not None and not is_loopback(engine.listen_host):
        return finding(
            Status.FAIL,
            f"the configuration asks to bind {engine.listen_host!r}, not a loopback address",
            evidence,
        )
    if not bound:
        why = "" if facts.privilege.is_root else " (not root: its sockets may be hidden)"
        return finding(Status.ERROR, f"no listening socket of the engine was found{why}", evidence)
    if reach.unknown:
        return finding(
            Status.ERROR,
            "the engine listens on loopback in its namespace, but the host may publish it: "
            + "; ".join(reach.unknown),
            evidence,
        )
    shown = [f"{s.local_address}:{s.local_port}" for s, _ in gateways]
    summary = _loopback_summary(view, len(bound), list(reach.publications), shown)
    return finding(Status.PASS, summary, evidence)


def _port_listeners(socks: tuple[SocketFact, ...], port: int) -> list[SocketFact]:
    return [
        s for s in socks
        if s.protocol == "tcp" and s.state == psutil.CONN_LISTEN and s.local_port == port
    ]  # fmt: skip


@check("OG-NET-02")
def nothing_else_on_engine_port(facts: Facts) -> Finding:
    view = engine_view(facts)
    engine = view.engine
    if engine.port is None:
        return finding(Status.ERROR, "the engine's port is unknown")
    pids = tree_pids(engine)
    inside = _port_listeners(view.sockets, engine.port)
    host = _port_listeners(facts.sockets, engine.port) if view.foreign else []
    evidence = [("listener on port", _describe_in(s, view)) for s in inside]
    evidence += [("listener on port (host side)", describe_socket(s)) for s in host]
    others = [_describe_in(s, view) for s in inside if s.pid not in pids]
    forwarders = {p.socket: p.how for p in host_exposure(facts, view).publications if p.socket}
    gateways = 0
    for s in host:
        if s in forwarders:
            evidence.append(("forwards into the engine's namespace", forwarders[s]))
        elif s.pid not in pids and s.pid is not None:
            chain = gateway_chain.relate(s, facts, view)
            if chain.proved:
                gateways += 1
                evidence.append(("the engine's gateway", f"{describe_socket(s)}: {chain.text}"))
            else:
                others.append(f"{describe_socket(s)} (not the engine's gateway: {chain.text})")
        elif s.pid not in pids:
            others.append(describe_socket(s))
    unknown = [s for s in (*inside, *host) if s.pid is None and s.pid not in pids]
    if unknown and not facts.privilege.is_root:
        return finding(
            Status.ERROR,
            f"{len(unknown)} listener(s) on port {engine.port} have no readable owner (not root)",
            evidence,
        )
    if others:
        return finding(
            Status.FAIL,
            f"another process listens on the engine port {engine.port}: " + ", ".join(others),
            evidence,
        )
    through = f"; on the host only the engine's gateway ({gateways})" if gateways else ""
    return finding(
        Status.PASS, f"only the engine listens on port {engine.port}{view.where()}{through}",
        evidence,
    )  # fmt: skip


def _outbound(sock: SocketFact) -> bool:
    return sock.remote_address is not None and sock.state != psutil.CONN_LISTEN


def _observed(facts: Facts, view: EngineView) -> list[tuple[SocketFact, str]]:
    seen = [(s, "snapshot") for s in facts.sockets]
    if view.foreign:
        seen += [(s, f"snapshot{view.where()}") for s in view.sockets]
    return seen + [(s, "watch") for s in facts.watched_sockets]


@check("OG-NET-03")
def no_remote_connection_from_engine(facts: Facts) -> Finding:
    view = engine_view(facts)
    engine = view.engine
    pids = tree_pids(engine)
    observed = _observed(facts, view)
    leaving = [
        (s, when) for s, when in observed
        if s.pid in pids and _outbound(s) and not is_loopback(s.remote_address)
    ]  # fmt: skip
    hidden = [
        s for s, _ in observed
        if s.pid is None and _outbound(s) and not is_loopback(s.remote_address)
    ]  # fmt: skip
    window = facts.options.watch_seconds
    samples = facts.extra.get("watch_samples", 0)
    interval = facts.extra.get("watch_interval_ms")
    every = f", one every {interval} ms (median)" if interval is not None else ""
    inside = facts.extra.get("watch_engine_namespace") is True
    scope = " of the audit's namespace only" if view.foreign and not inside else ""
    scope = ", in the audit's and the engine's namespaces" if view.foreign and inside else scope
    evidence = [
        ("process tree", ", ".join(f"{p.pid} {p.name}" for p in engine.tree)),
        ("watch window",
         f"{window:g}s, {samples} samples{every}{scope}" if window else "none (snapshot only)"),
    ]  # fmt: skip
    if leaving:
        evidence += [(f"connection ({when})", describe_socket(s)) for s, when in leaving]
        return finding(
            Status.FAIL,
            f"{len(leaving)} non-loopback connection(s) from the engine's process tree"
            + view.where(),
            evidence,
        )
    if hidden and not facts.privilege.is_root:
        evidence += [("connection without owner", describe_socket(s)) for s in hidden]
        return finding(
            Status.ERROR,
            f"{len(hidden)} non-loopback connection(s) have no readable owner (not root)",
            evidence,
        )
    count = sum(1 for s, _ in observed if s.pid in pids)
    return finding(
        Status.PASS,
        f"no non-loopback connection among {count} socket(s) of the engine's tree" + view.where(),
        evidence,
    )


# ---------------------------------------------------------------- OG-NET-04

_LOOPBACK_ALLOW = {"localhost", "127.0.0.0/8", "::1/128", "127.0.0.1/32", "127.0.0.1", "::1"}


def systemd_egress(facts: Facts, engine: EngineFacts) -> tuple[bool, list[tuple[str, str]]]:
    """Whether the unit denies all egress but loopback, and whether that is in force here."""
    unit = engine.unit
    if unit is None:
        return False, [("systemd", "no unit for the engine")]
    deny = set(unit.properties.get("IPAddressDeny", "").split())
    allow = set(unit.properties.get("IPAddressAllow", "").split())
    evidence = [
        (f"{unit.name} IPAddressDeny", " ".join(sorted(deny)) or "(unset)"),
        (f"{unit.name} IPAddressAllow", " ".join(sorted(allow)) or "(unset)"),
    ]
    denies_all = "any" in deny or {"0.0.0.0/0", "::/0"} <= deny
    if not denies_all or not allow <= _LOOPBACK_ALLOW:
        return False, evidence
    if not facts.systemd_running:
        evidence.append(("systemd", "not running: the unit's settings are not in force"))
        return False, evidence
    main_pid = unit.properties.get("MainPID")
    if engine.main is not None and main_pid not in (None, str(engine.main.pid)):
        evidence.append(("systemd", f"unit MainPID {main_pid} is not the engine {engine.main.pid}"))
        return False, evidence
    return True, evidence


def _service_ids(facts: Facts, engine: EngineFacts) -> set[str]:
    ids: set[str] = set()
    if engine.main is not None:
        ids |= {str(engine.main.uid), str(engine.main.username)}
    user = facts.hardening.service_user if facts.hardening else None
    if user is not None:
        ids |= {str(user.uid), str(user.name)}
    return ids - {"None"}


def nft_egress(facts: Facts, engine: EngineFacts) -> tuple[bool, list[tuple[str, str]]]:
    """Whether an nft rule drops or rejects the service user's traffic, with a counter."""
    egress = facts.egress
    if egress is None or egress.nft_rules is None:
        why = egress.nft_error if egress else "not collected"
        return False, [("nftables", f"ruleset unreadable: {why}")]
    ids = _service_ids(facts, engine)
    matching: list[NftRule] = [
        r for r in egress.nft_rules
        if r.skuid in ids and r.verdict in ("drop", "reject") and r.packets is not None
    ]  # fmt: skip
    if not matching:
        return False, [("nftables", f"no counting drop/reject rule for skuid {sorted(ids)}")]
    return True, [
        (
            f"nft {r.family} {r.table} {r.chain} handle {r.handle}",
            f"{r.text} (comment: {r.comment or '-'}; counter {r.packets} packets, {r.bytes} bytes)",
        )
        for r in matching
    ]


def _no_enforcement(facts: Facts, evidence: list[tuple[str, str]]) -> Finding:
    if facts.egress is None or facts.egress.nft_rules is None:
        # unreadable (usually: not root) is not absent: an nft rule may still be in force
        raise CannotEvaluate(
            "no systemd egress restriction, and the nftables ruleset could not be read: "
            "cannot tell whether egress is enforced (run as root)",
            evidence,
        )
    return finding(Status.FAIL, "no process-scoped egress enforcement", evidence)


@check("OG-NET-04")
def egress_enforcement_present(facts: Facts) -> Finding:
    engine = require_engine(facts, running=False)
    by_unit, unit_evidence = systemd_egress(facts, engine)
    by_nft, nft_evidence = nft_egress(facts, engine)
    evidence = unit_evidence + nft_evidence
    mechanisms = [name for name, ok in (("systemd", by_unit), ("nftables", by_nft)) if ok]
    if not mechanisms:
        return _no_enforcement(facts, evidence)
    configured = " and ".join(mechanisms)
    probe = facts.egress.probe if facts.egress else None
    if probe is None:
        evidence.append(("probe", "enforcement unverified (no probe address configured)"))
        return finding(
            Status.ERROR,
            f"egress is restricted by {configured} configuration; enforcement unverified "
            "(no probe address configured: --egress-probe)",
            evidence,
        )
    where = f" from network namespace {probe.namespace}" if probe.namespace else ""
    evidence.append(
        ("probe", f"{probe.target} as uid {probe.uid} in {probe.cgroup}{where}: "
         f"{probe.outcome}, {probe.detail}")
    )  # fmt: skip
    if probe.outcome == "connected":
        return finding(
            Status.FAIL,
            f"configured ({configured}) but NOT enforced: a probe from the engine's cgroup "
            f"and user reached {probe.target}",
            evidence,
        )
    if probe.outcome == "blocked":
        # a probe from a sealed engine's namespace meets that namespace's rules, not the host's
        return finding(
            Status.PASS, f"egress restricted by {configured}; enforcement verified{where}", evidence
        )
    return finding(Status.ERROR, f"enforcement could not be verified: {probe.detail}", evidence)


# ---------------------------------------------------------------- OG-NET-05

MAX_LISTED = 50


PROBE_SLACK_S = 1.0


def _within(stamp: str, start: str | None, end: str | None) -> bool:
    """Whether `stamp` lies in [start, end], widened by PROBE_SLACK_S each way."""
    if start is None or end is None:
        return False
    try:
        at, low, high = (datetime.fromisoformat(t).timestamp() for t in (stamp, start, end))
    except ValueError:
        return False
    return low - PROBE_SLACK_S <= at <= high + PROBE_SLACK_S


def _is_probe(attempt: EgressAttempt, probe: ProbeResult | None, strict: bool) -> bool:
    """This audit's probe: TCP to the probe target from the port the probe reported, in the
    probe's time window. Without a baseline (`strict` False) the log holds earlier nights
    too: TCP to the target from the probe's fixed source port counts as an audit's probe."""
    if probe is None:
        return False
    host, _, port = probe.target.rpartition(":")
    if not (
        attempt.protocol == "tcp"
        and attempt.destination == host.strip("[]")
        and str(attempt.destination_port) == port
    ):
        return False
    if strict:
        times = (attempt.time, attempt.last_time or attempt.time)
        return attempt.source_port == probe.source_port and all(
            _within(t, probe.started_at, probe.finished_at) for t in times
        )
    return attempt.source_port in {PROBE_SOURCE_PORT, probe.source_port}


def _probe_window(probe: ProbeResult | None) -> str:
    if probe is None:
        return "no probe this run"
    return (
        f"tcp to {probe.target} from port {probe.source_port} between {probe.started_at} and "
        f"{probe.finished_at}"
    )


def describe_attempt(attempt: EgressAttempt) -> str:
    port = f":{attempt.destination_port}" if attempt.destination_port is not None else ""
    host = (
        f"[{attempt.destination}]" if ":" in attempt.destination and port else attempt.destination
    )
    packets = ""
    if attempt.packets > 1:
        packets = f" ({attempt.packets} packets until {attempt.last_time})"
    return f"{attempt.time} {attempt.protocol} {host}{port} uid {attempt.uid}{packets}"


def _recorder_evidence(recording: EgressRecording, groups: set[int]) -> list[tuple[str, str]]:
    listening = recording.listening_groups
    return [
        ("recorder log", f"{recording.path} ({recording.size} bytes, inode {recording.inode})"),
        ("NFLOG groups of the egress rule", ", ".join(map(str, sorted(groups))) or "none"),
        ("NFLOG groups with a listener",
         "unreadable" if listening is None else ", ".join(map(str, listening)) or "none"),
    ]  # fmt: skip


def _recorder_problem(recording: EgressRecording, groups: set[int]) -> str | None:
    if not recording.exists:
        return f"the recorder's log {recording.path} does not exist (is ulogd2 running?)"
    if recording.error is not None:
        return f"the recorder's log {recording.path}: {recording.error}"
    if not groups:
        return "no loaded nft rule hands the service user's packets to an NFLOG group"
    if recording.listening_groups is None:
        return "the kernel's NFLOG listener table is unreadable"
    if not groups & set(recording.listening_groups):
        return f"nothing listens on NFLOG group(s) {sorted(groups)}: packets are not recorded"
    return None


@dataclass(frozen=True)
class _Scope:
    """One namespace's recorded attempts, as OG-NET-05 judges them."""

    who: str  # "by the engine's user" | "from the engine's namespace net:[…]"
    sealed: bool  # the engine's own namespace, not the audit's
    problem: tuple[Status, str] | None  # why its attempts cannot be judged
    evidence: tuple[tuple[str, str], ...]
    others: tuple[EgressAttempt, ...] = ()  # recorded attempts that are not the audit's probe
    since: str = "in the log"


def _attempt_evidence(
    facts: Facts, recording: EgressRecording, sources: tuple[RecordedSource, ...], label: str
) -> tuple[list[tuple[str, str]], list[EgressAttempt]]:
    """The probe's and everyone else's recorded attempts since the sources' baselines."""
    probe = facts.egress.probe if facts.egress else None
    strict = any(s.before is not None and s.log_break is None for s in sources)
    probes = [a for a in recording.attempts if _is_probe(a, probe, strict)]
    others = [a for a in recording.attempts if not _is_probe(a, probe, strict)]
    packets = sum(a.packets for a in probes)
    evidence = [
        (label + "read", _read_scope(facts, recording, sources)),
        (label + "the audit's own probe window", _probe_window(probe)),
        (label + "the audit's own probe",
         f"{len(probes)} recorded attempt(s), {packets} packet(s)"),
    ]  # fmt: skip
    if recording.unparsable_lines:
        evidence.append((label + "unparsable lines", str(recording.unparsable_lines)))
    return evidence, others


def _host_scope(facts: Facts, engine: EngineFacts, recording: EgressRecording) -> _Scope:
    ids = _service_ids(facts, engine)
    rules = facts.egress.nft_rules if facts.egress else None
    groups = {r.log_group for r in rules or () if r.skuid in ids and r.log_group is not None}
    evidence = _recorder_evidence(recording, groups)
    problem = _recorder_problem(recording, groups)
    who = "by the engine's user"
    if problem is not None:
        status = (
            Status.ERROR if recording.error or recording.listening_groups is None else Status.FAIL
        )
        return _Scope(who, False, (status, problem), tuple(evidence))
    sources = facts.egress.sources if facts.egress else ()
    more, others = _attempt_evidence(facts, recording, sources, "")
    since = _since(facts.egress.previous if facts.egress else None, sources)
    return _Scope(who, False, None, (*evidence, *more), tuple(others), since)


def _sealed_scope(facts: Facts, sealed: SealedRecording) -> _Scope:
    evidence = _sealed.evidence(sealed)
    who = f"from {_sealed.where(sealed)}"
    problem = _sealed.recording_problem(sealed)
    if problem is not None or sealed.recording is None:
        return _Scope(who, True, problem, tuple(evidence))
    more, others = _attempt_evidence(facts, sealed.recording, sealed.sources, _sealed.LABEL)
    since = _since(facts.egress.previous if facts.egress else None, sealed.sources)
    return _Scope(who, True, None, (*evidence, *more), tuple(others), since)


def _attempts_text(scope: _Scope) -> str:
    destinations = sorted({f"{a.destination}:{a.destination_port}" for a in scope.others})
    return (
        f"{len(scope.others)} egress attempt(s) {scope.who} recorded by the kernel "
        f"{scope.since}, to {', '.join(destinations[:10])}"
    )


def _listed(scopes: list[_Scope]) -> list[tuple[str, str]]:
    listed = [
        (a, " in the engine's namespace" if scope.sealed else "")
        for scope in scopes for a in scope.others
    ]  # fmt: skip
    evidence = [("attempt", describe_attempt(a) + where) for a, where in listed[:MAX_LISTED]]
    if len(listed) > MAX_LISTED:
        evidence.append(("more attempts", str(len(listed) - MAX_LISTED)))
    return evidence


def _judged(scopes: list[_Scope]) -> Finding:
    evidence = [e for scope in scopes for e in scope.evidence] + _listed(scopes)
    problems = [scope.problem for scope in scopes if scope.problem is not None]
    failed = [text for status, text in problems if status is Status.FAIL]
    failed += [_attempts_text(scope) for scope in scopes if scope.others]
    if failed:
        return finding(Status.FAIL, "; ".join(failed), evidence)
    if problems:
        return finding(Status.ERROR, "; ".join(text for _, text in problems), evidence)
    said = [f"no egress attempt {scope.who} was recorded {scope.since}" for scope in scopes]
    return finding(Status.PASS, "; ".join(said), evidence)


@check("OG-NET-05")
def no_recorded_egress_attempt(facts: Facts) -> Finding:
    engine = require_engine(facts, running=False)
    recording = facts.egress.recording if facts.egress else None
    sealed = facts.egress.sealed if facts.egress else None
    if recording is None and (sealed is None or sealed.log is None):
        if sealed is not None:
            raise DoesNotApply(
                f"no recorder log configured (--egress-log, --seal-log): the engine runs in "
                f"its own network namespace {sealed.namespace}, where nothing records its "
                "attempts one by one",
                _sealed.evidence(sealed),
            )
        raise DoesNotApply("no recorder log configured (--egress-log)")
    scopes = [] if recording is None else [_host_scope(facts, engine, recording)]
    if sealed is not None:
        scopes.append(_sealed_scope(facts, sealed))
    return _judged(scopes)


def _since(previous: PreviousAudit | None, sources: tuple[RecordedSource, ...]) -> str:
    """Since when the judged attempts were recorded: the previous audit when its baseline
    was continued, else whatever the log holds."""
    continued = any(s.before is not None and s.log_break is None for s in sources)
    if previous is None or previous.error is not None or not continued:
        return "in the log"
    return f"since the previous audit ({previous.finished_at})"


def _read_scope(
    facts: Facts, recording: EgressRecording, sources: tuple[RecordedSource, ...]
) -> str:
    previous = facts.egress.previous if facts.egress else None
    where = recording.read_from
    if previous is None:
        return f"{where}: no report history given, so no baseline"
    if previous.error is not None:
        return f"{where}: the previous baseline is unusable ({previous.error})"
    if previous.entry is None:
        return f"{where}: the first audit of this host in {previous.history}"
    if _since(previous, sources) == "in the log":
        return f"{where}: entry {previous.entry} left no baseline this log continues (OG-NET-07)"
    return f"{where}, since entry {previous.entry} ({previous.finished_at})"


# ---------------------------------------------------------------- OG-NET-06


def _seal_evidence(
    space: NamespaceFacts, verdicts: list[InterfaceVerdict]
) -> list[tuple[str, str]]:
    held = f" ({space.cgroup})" if space.cgroup else ""
    shared = ", the audit's (host) namespace" if space.shares_audit_namespace else ""
    evidence = [("namespace", f"{space.namespace} of pid {space.pid}{held}{shared}")]
    evidence += [(f"interface {v.interface.name}", describe_interface(v)) for v in verdicts]
    return evidence


@check("OG-NET-06")
def engine_namespace_has_no_path_out(facts: Facts) -> Finding:
    require_engine(facts, running=True)
    space = engine_namespace(facts)
    if space is None:
        raise CannotEvaluate("the engine's network namespace was not read")
    if space.error is not None or space.interfaces is None:
        raise CannotEvaluate(
            f"the engine's network namespace {space.namespace} could not be read: {space.error}",
            [("namespace", f"{space.namespace} via pid {space.pid}")],
        )
    verdicts, unnamed = judge(space)
    evidence = _seal_evidence(space, verdicts)
    evidence += [("route to an unknown device", describe_route(r)) for r in unnamed]
    out = [v.interface.name for v in verdicts if v.routes_out]
    if not out and not unnamed:
        sinks = ", ".join(v.interface.name for v in verdicts)
        return finding(
            Status.PASS,
            f"no path out of the engine's network namespace {space.namespace}: "
            f"{len(verdicts)} interface(s) ({sinks}), none with a route out",
            evidence,
        )
    leads = ", ".join(out + [describe_route(r) for r in unnamed])
    if space.shares_audit_namespace and not facts.options.require_sealed:
        raise DoesNotApply(
            "the engine is not sealed: it shares the host's network namespace "
            f"{space.namespace}, which leads out through {leads}; its egress rests on "
            "OG-NET-03/04/05 (--require-sealed makes this a failure)",
            evidence,
        )
    return finding(
        Status.FAIL,
        f"the engine's network namespace {space.namespace} has a path out through {leads}",
        evidence,
    )

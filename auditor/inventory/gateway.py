"""The gateway, asked the way a client would: requests to its listeners without a credential,
with an invalid one and with the role's audit-only token, TLS handshakes, a marked request
followed into the access log, and every other listener here that could lead to the engine.

Where to ask comes from gateway.json (written by role offgrid_gateway); what the gateway
does comes only from its answers. Every request goes to this host's own addresses.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import secrets
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor import safeio
from auditor.errors import InputError
from auditor.inventory import gateway_tls, sockets
from auditor.inventory.interface import (
    AccessLogProbe,
    EngineFacts,
    GatewayFacts,
    GatewayProbe,
    SocketFact,
)

SCHEMA = "offgrid-gateway/1"
DEFAULT_DESCRIPTOR = Path("/etc/offgrid-gateway/gateway.json")
TIMEOUT_S = 5.0
MARK_HEADER = "x-offgrid-gateway"
INVALID_TOKEN = "ogk_000000000000_" + "A" * 43
_TOKEN = re.compile(r"^ogk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")
# Harmless arguments: a model that does not exist, so a route that was wrongly let through
# fails inside the engine instead of changing anything.
_NO_MODEL = "offgrid-audit-probe-nonexistent"
MANAGEMENT: tuple[tuple[str, str, Mapping[str, str]], ...] = (
    ("POST", "/api/pull", {"model": f"{_NO_MODEL}.invalid/none:latest"}),
    ("POST", "/api/push", {"model": f"{_NO_MODEL}.invalid/none:latest"}),
    ("POST", "/api/create", {"model": _NO_MODEL, "from": _NO_MODEL}),
    ("POST", "/api/copy", {"source": _NO_MODEL, "destination": _NO_MODEL + "-copy"}),
    ("DELETE", "/api/delete", {"model": _NO_MODEL}),
    ("POST", "/api/blobs/sha256:" + "0" * 64, {}),
)
DEBUG = ("/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline")
VERSION_ROUTE = {"ollama": "/api/version", "llamacpp": "/v1/models"}
# a cheap route whose body the engine reads: the access log probe's body is really received
LOG_ROUTE = {
    "ollama": ("/api/show", "model"),
    "llamacpp": ("/extras/tokenize", "input"),
}
LOG_READ_LIMIT = 1 << 20
WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "*": "127.0.0.1"}  # noqa: S104 - matched, not bound


@dataclass(frozen=True)
class Target:
    name: str  # "local" | "team" | HOST:PORT
    host: str
    port: int
    tls: bool


@dataclass(frozen=True)
class Descriptor:
    engine: str
    local_listen: str
    team_listen: str | None
    access_log: Path
    audit_token: Path | None


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT of a listen setting, a wildcard host replaced by loopback."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"not a HOST:PORT listen address: {text!r}")
    return _reachable(host), int(port)


def _reachable(host: str) -> str:
    """A wildcard address is reached on loopback from here."""
    return WILDCARDS.get(host, host)


def load_descriptor(path: Path) -> Descriptor:
    raw = safeio.parse_json(safeio.read_bytes(path, 1 << 16, what="gateway description"), str(path))
    keys = {"schema", "engine", "local_listen", "team_listen", "access_log", "audit_token"}
    if not isinstance(raw, dict) or set(raw) != keys or raw["schema"] != SCHEMA:
        raise InputError(f"{path}: not an {SCHEMA} description (keys {sorted(keys)})")
    if raw["engine"] not in VERSION_ROUTE:
        raise InputError(f"{path}: unknown engine {raw['engine']!r}")
    for key in ("local_listen", "access_log"):
        if not isinstance(raw[key], str):
            raise InputError(f"{path}: {key} must be a string")
    for key in ("team_listen", "audit_token"):
        if raw[key] is not None and not isinstance(raw[key], str):
            raise InputError(f"{path}: {key} must be a string or null")
    parse_listen(raw["local_listen"])
    if raw["team_listen"] is not None:
        parse_listen(raw["team_listen"])
    token = Path(raw["audit_token"]) if raw["audit_token"] else None
    return Descriptor(
        raw["engine"], raw["local_listen"], raw["team_listen"], Path(raw["access_log"]), token
    )


def read_audit_token(path: Path | None) -> tuple[str | None, str | None]:
    """(token, None) or (None, why not); the file must be root's and readable by root only."""
    if path is None:
        return None, "the gateway description names no audit token"
    try:
        info = path.lstat()
        text = safeio.read_text(path, 4096, follow=False, what="audit token").strip()
    except (OSError, InputError) as exc:
        return None, f"cannot read the audit token {path}: {exc}"
    if info.st_uid != 0 or info.st_mode & 0o077:
        return (
            None,
            f"{path} must be root's with mode 0600, not uid {info.st_uid} {info.st_mode & 0o777:o}",
        )
    if not _TOKEN.match(text):
        return None, f"{path} does not hold a gateway token"
    return text, None


def request(
    target: Target, method: str, path: str, *, token: str | None = None,
    body: bytes | None = None, credential: str = "none",
) -> GatewayProbe:  # fmt: skip
    """One request; the answer's status and whether the gateway's header was on it."""
    headers = {"Host": "localhost", "Connection": "close", "User-Agent": "offgrid-audit"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        headers["Content-Type"] = "application/json"
    connection = _connection(target)
    try:
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        answer.read(1 << 16)
        marked = answer.getheader(MARK_HEADER) is not None
        return GatewayProbe(target.name, method, path, credential, answer.status, marked)
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        return GatewayProbe(target.name, method, path, credential, None, False, error)
    finally:
        connection.close()


def _connection(target: Target) -> http.client.HTTPConnection:
    if not target.tls:
        return http.client.HTTPConnection(target.host, target.port, timeout=TIMEOUT_S)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # OG-GW-04 judges the certificate, not this request
    return http.client.HTTPSConnection(target.host, target.port, timeout=TIMEOUT_S, context=context)


def _body(arguments: Mapping[str, str]) -> bytes:
    return json.dumps(dict(arguments)).encode()


def route_probes(
    target: Target, engine: str, token: str | None, credential: str
) -> list[GatewayProbe]:
    """The engine's version route, every management route and the debug routes."""
    probes = [request(target, "GET", VERSION_ROUTE[engine], token=token, credential=credential)]
    for method, path, arguments in MANAGEMENT:
        probes.append(
            request(target, method, path, token=token, body=_body(arguments), credential=credential)
        )
    probes += [request(target, "GET", path, token=token, credential=credential) for path in DEBUG]
    return probes


def team_probes(target: Target, engine: str, token: str | None) -> list[GatewayProbe]:
    version = VERSION_ROUTE[engine]
    probes = [
        request(target, "GET", version),
        request(target, "GET", version, token=INVALID_TOKEN, credential="invalid"),
        request(target, "POST", "/api/pull", body=_body(MANAGEMENT[0][2])),
    ]
    if token is not None:
        probes += route_probes(target, engine, token, "audit")
    return probes


def _read_from(log: Path, offset: int) -> str:
    with log.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        handle.seek(offset if offset <= size else 0)  # rotated: the new file from its start
        return handle.read(LOG_READ_LIMIT).decode("utf-8", "replace")


def _own_line(text: str, method: str, route: str, status: int | None) -> dict[str, Any] | None:
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if (
                isinstance(entry, dict)
                and entry.get("method") == method
                and entry.get("route") == route
                and entry.get("status") == status
            ):
                return entry
    return None


def access_log_probe(target: Target, engine: str, log: Path) -> AccessLogProbe:
    """A request with a marker in its body, its Authorization header and its query string to
    a route the engine answers; then the log lines written since, searched for the markers."""
    marks = {where: f"offgridmark{secrets.token_hex(8)}" for where in ("body", "authorization")}
    marks["query"] = f"offgridmark{secrets.token_hex(8)}"
    route, field = LOG_ROUTE[engine]
    try:
        offset = log.stat().st_size
    except OSError as exc:
        missing = GatewayProbe(target.name, "POST", route, "none", None, False, "not sent")
        return AccessLogProbe(str(log), missing, 0, (), (), f"cannot read {log}: {exc}")
    probe = request(
        target, "POST", f"{route}?offgrid_probe={marks['query']}", token=marks["authorization"],
        body=_body({field: marks["body"]}), credential="invalid",
    )  # fmt: skip
    probe = GatewayProbe(probe.listener, probe.method, route, *_rest(probe))
    text, entry = "", None
    for _ in range(20):  # nginx writes the line after the answer has left
        try:
            text = _read_from(log, offset)
        except OSError as exc:
            return AccessLogProbe(str(log), probe, 0, (), (), f"cannot read {log}: {exc}")
        entry = _own_line(text, "POST", route, probe.status)
        if entry is not None:
            break
        time.sleep(0.1)
    leaked = tuple(where for where, mark in marks.items() if mark in text)
    fields = tuple(sorted(entry)) if entry else ()
    return AccessLogProbe(str(log), probe, len(text.splitlines()), fields, leaked)


def _rest(probe: GatewayProbe) -> tuple[str, int | None, bool, str | None]:
    return probe.credential, probe.status, probe.from_gateway, probe.error


def bypass_candidates(
    socks: tuple[SocketFact, ...],
    engine: EngineFacts | None,
    names: Mapping[int, str],
    skip_ports: set[int],
    engine_ports: set[int],
) -> list[SocketFact]:
    """Listeners here that could lead to the engine: systemd's own sockets (socket units),
    socket proxies, the engine's processes, and anything on an engine port."""
    tree = {p.pid for p in engine.tree} if engine else set()
    if engine and engine.port:
        engine_ports = engine_ports | {engine.port}
    found = []
    for sock in socks:
        if sock.protocol != "tcp" or not sockets.listening(sock) or sock.local_port in skip_ports:
            continue
        owner = names.get(sock.pid, "") if sock.pid is not None else ""
        if (
            sock.pid in {1, None}
            or sock.pid in tree
            or "socket-proxyd" in owner
            or sock.local_port in engine_ports
        ):
            found.append(sock)
    return found


def _bypass_target(sock: SocketFact) -> Target:
    host = _reachable(sock.local_address)
    shown = f"[{host}]" if ":" in host else host
    return Target(f"{shown}:{sock.local_port}", host, sock.local_port, tls=False)


def collect(
    path: Path,
    engine: EngineFacts | None,
    socks: tuple[SocketFact, ...],
    names: Mapping[int, str],
    engine_ports: set[int],
) -> GatewayFacts:
    try:
        described = load_descriptor(path)
    except InputError as exc:
        return GatewayFacts(str(path), str(exc))
    local = Target("local", *parse_listen(described.local_listen), tls=False)
    probes = route_probes(local, described.engine, None, "none")
    team_tls, token_error = None, None
    skip = {local.port}
    if described.team_listen is not None:
        team = Target("team", *parse_listen(described.team_listen), tls=True)
        skip.add(team.port)
        token, token_error = read_audit_token(described.audit_token)
        probes += team_probes(team, described.engine, token)
        team_tls = gateway_tls.collect(team.host, team.port)
    log = access_log_probe(local, described.engine, described.access_log)
    owned = sockets.resolve(socks, sockets.listening)
    candidates = bypass_candidates(owned, engine, names, skip, engine_ports)
    version = VERSION_ROUTE[described.engine]
    bypass = tuple(
        request(_bypass_target(sock), "GET", path)
        for sock in candidates[:64]
        for path in (version, DEBUG[0])
    )
    return GatewayFacts(
        descriptor=str(path), error=None, engine=described.engine,
        local_listen=described.local_listen, team_listen=described.team_listen,
        audit_credential_error=token_error, probes=tuple(probes), tls=team_tls,
        access_log=log, bypass=bypass,
    )  # fmt: skip

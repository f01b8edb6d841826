"""The running engine's own word: a CORS probe, its cloud status route, its start-up log.

Configuration says what the engine was asked to do; these say what the running process
does. Every probe goes to loopback only, to the engine's own port.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from pathlib import PurePosixPath

import requests

from auditor import safeio
from auditor.errors import InputError
from auditor.inventory.interface import (
    AuditOptions,
    EngineFacts,
    HttpProbe,
    JournalLine,
    LiveFacts,
    ServedModels,
)
from auditor.inventory.profiles import profile, runners
from auditor.models import lockfile
from auditor.models.store import parse_name

PROBE_ORIGIN = "http://offgrid-cors-probe.invalid"
TIMEOUT_S = 5.0
MAX_BODY = 1 << 16
JOURNAL_TIMEOUT_S = 20.0


def _loopback(host: str | None) -> str:
    """The address to reach the engine on from here: its own if loopback, else 127.0.0.1."""
    try:
        address = ipaddress.ip_address((host or "").strip("[]"))
    except ValueError:
        return "127.0.0.1"
    if address.is_loopback:
        return f"[{address}]" if address.version == 6 else str(address)
    return "127.0.0.1"


def _probe(url: str, method: str, headers: dict[str, str]) -> HttpProbe:
    try:
        reply = requests.request(
            method, url, headers=headers, timeout=TIMEOUT_S, allow_redirects=False, stream=True
        )
        raw = reply.raw.read(MAX_BODY, decode_content=True)
        reply.close()
    except requests.RequestException as exc:
        return HttpProbe(url, method, None, {}, None, f"{type(exc).__name__}: {exc}")
    body: object = None
    try:
        body = safeio.parse_json(raw, url) if raw else None
    except InputError:
        body = None
    lowered = {k.lower(): v for k, v in reply.headers.items()}
    return HttpProbe(url, method, reply.status_code, lowered, body, None)


def _journal(unit: str, pattern: str) -> JournalLine:
    """The last line matching `pattern` logged by the unit's current run."""
    try:
        shown = subprocess.run(
            ["systemctl", "show", "-p", "InvocationID", "--value", unit],
            capture_output=True, text=True, timeout=JOURNAL_TIMEOUT_S, check=False,
        )  # fmt: skip
        invocation = shown.stdout.strip() or None
        if shown.returncode != 0 or invocation is None:
            return JournalLine(unit, None, None, f"no current run of {unit} (systemctl show)")
        done = subprocess.run(
            ["journalctl", "--no-pager", "-q", "-o", "cat", f"_SYSTEMD_INVOCATION_ID={invocation}"],
            capture_output=True, text=True, timeout=JOURNAL_TIMEOUT_S, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return JournalLine(unit, None, None, f"cannot read the journal: {exc}")
    if done.returncode != 0:
        return JournalLine(unit, invocation, None, f"journalctl: {done.stderr.strip()[:200]}")
    matches = [line for line in done.stdout.splitlines() if re.search(pattern, line)]
    return JournalLine(unit, invocation, matches[-1][:500] if matches else None, None)


def collect(engine: EngineFacts) -> LiveFacts:
    own = profile(engine.kind)
    if engine.main is None or engine.port is None:
        return LiveFacts(PROBE_ORIGIN, None, None, None)
    base = f"http://{_loopback(engine.listen_host)}:{engine.port}"
    cors = _probe(
        base + own.cors_path,
        "OPTIONS",
        {"Origin": PROBE_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    status = _probe(base + own.status_path, "GET", {}) if own.status_path else None
    log = None
    if own.cloud_log_pattern and engine.unit is not None:
        log = _journal(engine.unit.name, own.cloud_log_pattern)
    return LiveFacts(PROBE_ORIGIN, cors, status, log)


def _pinned(options: AuditOptions) -> dict[str, dict[str, object]]:
    """The lock's Modelfile parameters per model: under its short name, without a `:latest`
    tag (a llama.cpp model alias) and under its GGUF file's stem (the name a llama.cpp server
    gives a model without an alias); empty without a lock."""
    if options.lock_path is None:
        return {}
    try:
        lock = lockfile.load(options.lock_path)
    except InputError:
        return {}  # the OG-INT controls report an unusable lock
    out: dict[str, dict[str, object]] = {}
    for model in lock.models:
        if model.source is None:
            continue
        short = parse_name(model.name).short
        params = dict(model.source.parameters)
        for key in (short, short.removesuffix(":latest"), PurePosixPath(model.source.file).stem):
            out.setdefault(key, params)
    return out


def served(engine: EngineFacts, options: AuditOptions) -> ServedModels | None:
    """What the running engine serves, and with which parameters; None when not running."""
    reader = profile(engine.kind).served
    if reader is None or engine.main is None or engine.port is None:
        return None
    base = f"http://{_loopback(engine.listen_host)}:{engine.port}"
    found = reader(engine, base, runners(engine))
    return ServedModels(found.models, found.error, _pinned(options))

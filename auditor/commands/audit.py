"""`offgrid audit`: is anything on this workstation exposed, leaking or misconfigured?"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from auditor import safeio
from auditor.audit import run_audit
from auditor.checks.runner import exit_code
from auditor.console import Console
from auditor.engine_kind import EngineKind
from auditor.errors import InputError, UsageError
from auditor.fsutil import preflight
from auditor.inventory.egress_probe import parse_target
from auditor.inventory.interface import AuditOptions
from auditor.report.history import append as append_history
from auditor.report.history import preflight as history_preflight
from auditor.report.model import Report, to_dict
from auditor.report.render import render, renderer_for
from auditor.report.validate import ensure_valid
from auditor.report.write import write_report
from auditor.verdicts import effective_status, summarize

NAME = "audit"
HELP = "audit the engine's exposure, egress, configuration, integrity and hardening"

DEFAULT_CONFIG = Path("/etc/offgrid/offgrid.toml")
ENGINES = tuple(kind.value for kind in EngineKind)
MAX_WATCH_S = 3600.0

# config key -> (argparse dest, expected python type(s))
_CONFIG_KEYS: Mapping[str, tuple[str, tuple[type, ...]]] = {
    "engine": ("engine", (str,)),
    "engine_pid": ("engine_pid", (int,)),
    "watch": ("watch", (int, float)),
    "waivers": ("waivers", (str,)),
    "format": ("format", (str,)),
    "output": ("output", (str,)),
    "ide_users": ("ide_users", (list,)),
    "lock": ("lock", (str,)),
    "store": ("store", (str,)),
    "full": ("full", (bool,)),
    "egress_probe": ("egress_probe", (str,)),
    "egress_log": ("egress_log", (str,)),
    "max_exposure": ("max_exposure", (int, float)),
    "max_vuln_age": ("max_vuln_age", (int,)),
    "cli_users": ("cli_users", (list,)),
    "history": ("history", (str,)),
    "allowed_signers": ("allowed_signers", (str,)),
    "gateway": ("gateway", (str,)),
    "require_sealed": ("require_sealed", (bool,)),
    "seal_log": ("seal_log", (str,)),
}


def register(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--engine", choices=ENGINES, help="audit this engine (default: discover it)")
    add("--engine-pid", type=int, metavar="PID", help="the engine's main process")
    add("--watch", type=float, metavar="SECONDS", help="also sample sockets for this long")
    add("--waivers", metavar="FILE", help="TOML or JSON waivers keyed by control id")
    add("--format", metavar="FORMAT", help="json (default), html, markdown or junit")
    add("--output", metavar="PATH", help="write the report here (atomically) instead of stdout")
    add("--config", metavar="FILE", help=f"settings file (default {DEFAULT_CONFIG} if present)")
    add("--lock", metavar="FILE", help="offgrid lock file: enables the OG-INT controls")
    add("--store", metavar="DIR", help="model store to verify (default: from the engine)")
    add("--full", action="store_const", const=True, help="re-hash every model blob")
    add("--ide-user", dest="ide_users", action="append", metavar="USER",
        help="inspect this user's IDE telemetry settings (repeatable)")  # fmt: skip
    add("--egress-probe", metavar="HOST:PORT",
        help="prove egress enforcement by connecting here as the engine (no default)")  # fmt: skip
    add("--egress-log", metavar="FILE",
        help="ulogd2 JSON lines of the egress rule's NFLOG group (enables OG-NET-05)")  # fmt: skip
    add("--max-exposure", type=float, metavar="SCORE",
        help="highest acceptable systemd-analyze exposure (default 2.5)")  # fmt: skip
    add("--cli-user", dest="cli_users", action="append", metavar="USER",
        help="check this user's environment for the CLI agent's tools (repeatable)")  # fmt: skip
    add("--max-vuln-age", type=int, metavar="DAYS",
        help="oldest acceptable known-vulnerability table (default 90)")  # fmt: skip
    add("--gateway", metavar="FILE",
        help="the gateway.json of role offgrid_gateway (enables OG-GW)")  # fmt: skip
    add("--history", metavar="DIR",
        help="append the report to this tamper-evident history directory; the previous "
             "report of this host there is the egress baseline (OG-NET-07)")  # fmt: skip
    add("--allowed-signers", metavar="FILE",
        help="ssh allowed_signers that vouch for the key that signed the lock")  # fmt: skip
    add("--require-sealed", action="store_const", const=True,
        help="OG-NET-06 fails (not n/a) when the engine shares the host's namespace")  # fmt: skip
    add("--seal-log", metavar="FILE",
        help="ulogd2 JSON lines of the recorder inside a sealed engine's namespace "
             "(OG-NET-05/07 for a sealed engine)")  # fmt: skip


def load_config(path: Path) -> dict[str, Any]:
    """Settings from TOML: top-level keys and/or an [audit] table (other tables are ignored)."""
    raw = safeio.load_toml(path, what="config")
    section = raw.get("audit", {})
    if not isinstance(section, dict):
        raise InputError(f"config {path}: [audit] must be a table")
    merged = {k: v for k, v in raw.items() if not isinstance(v, dict)} | section
    settings: dict[str, Any] = {}
    for key, value in merged.items():
        if key not in _CONFIG_KEYS:
            raise InputError(f"config {path}: unknown key {key!r}")
        dest, types = _CONFIG_KEYS[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise InputError(f"config {path}: {key} has the wrong type")
        settings[dest] = value
    return settings


def _merged(args: argparse.Namespace) -> dict[str, Any]:
    """Flags override the config file, which overrides the defaults."""
    config_path = Path(args.config) if args.config else None
    if config_path is None and DEFAULT_CONFIG.is_file():
        config_path = DEFAULT_CONFIG
    settings = load_config(config_path) if config_path else {}
    for dest, _ in _CONFIG_KEYS.values():
        value = getattr(args, dest, None)
        if value is not None:
            settings[dest] = value
    return settings


def _existing(path_text: str | None, what: str, want_dir: bool = False) -> Path | None:
    if path_text is None:
        return None
    path = Path(path_text)
    if not (path.is_dir() if want_dir else path.is_file()):
        raise InputError(f"{what} {path}: no such {'directory' if want_dir else 'file'}")
    return path


def _number(value: Any, what: str, low: float, high: float) -> float:
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise UsageError(f"{what} must be between {low:g} and {high:g}, not {value}")
    return number


@dataclass(frozen=True)
class Request:
    options: AuditOptions
    waivers: Path | None
    fmt: str
    output: Path | None
    history: Path | None = None


def build_request(args: argparse.Namespace) -> Request:
    s = _merged(args)
    if s.get("engine") is not None and s["engine"] not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(ENGINES)}")
    if s.get("engine_pid") is not None and s["engine_pid"] <= 0:
        raise UsageError("--engine-pid must be a positive process id")
    probe = s.get("egress_probe")
    if probe is not None:
        parse_target(probe)
    fmt = s.get("format", "json")
    history = Path(s["history"]) if s.get("history") else None
    renderer_for(fmt)  # an unknown format is a usage error before any work
    options = AuditOptions(
        engine=EngineKind(s["engine"]) if s.get("engine") else None,
        engine_pid=s.get("engine_pid"),
        watch_seconds=_number(s.get("watch", 0.0), "--watch", 0.0, MAX_WATCH_S),
        lock_path=_existing(s.get("lock"), "lock file"),
        store_dir=_existing(s.get("store"), "model store", want_dir=True),
        full_hash=bool(s.get("full", False)),
        ide_users=tuple(str(u) for u in s.get("ide_users", ())),
        max_exposure=_number(s.get("max_exposure", 2.5), "--max-exposure", 0.0, 10.0),
        egress_probe=probe,
        cli_users=tuple(str(u) for u in s.get("cli_users", ())),
        max_vuln_age_days=int(_number(s.get("max_vuln_age", 90), "--max-vuln-age", 1, 3650)),
        egress_log=Path(s["egress_log"]) if s.get("egress_log") else None,
        allowed_signers=Path(s["allowed_signers"]) if s.get("allowed_signers") else None,
        history=history,
        gateway=_existing(s.get("gateway"), "gateway description"),
        require_sealed=bool(s.get("require_sealed", False)),
        seal_log=Path(s["seal_log"]) if s.get("seal_log") else None,
    )
    output = Path(s["output"]) if s.get("output") else None
    if output is not None and not output.parent.is_dir():
        raise InputError(f"--output {output}: directory {output.parent} does not exist")
    return Request(options, _existing(s.get("waivers"), "waivers file"), fmt, output, history)


_STYLE = {
    "pass": "green",
    "fail": "red",
    "error": "yellow",
    "not_applicable": "dim",
    "waived": "cyan",
}


def summary_table(report: Report) -> Table:
    table = Table(title=f"offgrid audit · {report.host.hostname}", show_lines=False)
    for column in ("control", "severity", "status", "title"):
        table.add_column(column)
    for control in report.controls:
        status = effective_status(control)
        # Text, not markup: catalog prose must never be read as rich formatting
        table.add_row(
            Text(control.id), Text(control.severity),
            Text(status, style=_STYLE.get(status, "")), Text(control.title),
        )  # fmt: skip
    return table


def run(args: argparse.Namespace, console: Console) -> int:
    request = build_request(args)
    # where the report goes is checked before the audit runs, not after
    if request.output is not None:
        preflight(request.output)
    if request.history is not None:
        history_preflight(request.history)
    report = run_audit(request.options, request.waivers, console)
    if request.output is not None:
        write_report(report, request.fmt, request.output)
        console.info(f"report written to {request.output}")
    else:
        ensure_valid(report)
        console.out(render(report, request.fmt))
    if request.history is not None:
        entry = append_history(request.history, to_dict(report))
        console.info(f"history {request.history}: entry {entry.seq}, head {entry.entry_hash}")
    console.rich.print(summary_table(report))
    counts = summarize(report.controls)
    console.info(
        ", ".join(f"{counts[k]} {k}" for k in ("pass", "fail", "waived", "error", "not_applicable"))
    )
    return int(exit_code(report.controls))

"""One audit run: collect facts, evaluate every control, build the report.

Used by `offgrid audit` and `offgrid demo`; neither prints anything here except
progress lines through the Console.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditor import __version__
from auditor.checks.catalog import load_catalog
from auditor.checks.runner import run_controls
from auditor.checks.waivers import WaiverSet, load_waivers
from auditor.console import Console
from auditor.inventory.collect import collect
from auditor.inventory.interface import AuditOptions, EngineFacts, Facts
from auditor.models.integrity import section_dict
from auditor.report.model import HostInfo, Report


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def host_info(hostname: str) -> HostInfo:
    pretty = platform.system()
    try:
        release = platform.freedesktop_os_release()
        pretty = release.get("PRETTY_NAME", pretty)
    except OSError:
        pass
    return HostInfo(
        hostname=hostname, os=pretty, kernel=platform.release(), machine=platform.machine()
    )


def engine_section(engine: EngineFacts | None) -> dict[str, Any] | None:
    """What the report says about the engine (no environment values: they may hold secrets)."""
    if engine is None:
        return None
    main = engine.main
    unit = engine.unit
    return {
        "kind": engine.kind,
        "discovered_by": engine.discovered_by,
        "pid": main.pid if main else None,
        "create_time": main.create_time if main else None,
        "name": main.name if main else None,
        "user": main.username if main else None,
        "exe": engine.exe_path,
        "cmdline": list(main.cmdline) if main else [],
        "version": engine.version,
        "port": engine.port,
        "listen_host": engine.listen_host,
        "tree": [{"pid": p.pid, "create_time": p.create_time, "name": p.name} for p in engine.tree],
        "other_candidates": list(engine.other_candidates),
        "unit": None
        if unit is None
        else {
            "name": unit.name,
            "source": unit.source,
            "fragment_path": unit.fragment_path,
            "dropin_paths": list(unit.dropin_paths),
        },
    }


def integrity_section(facts: Facts) -> Mapping[str, Any] | None:
    return None if facts.integrity is None else section_dict(facts.integrity)


def _extra(facts: Facts, waivers: WaiverSet | None) -> dict[str, Any]:
    return {
        "sockets_observed": len(facts.sockets),
        "watched_sockets": len(facts.watched_sockets),
        "watch_seconds": facts.options.watch_seconds,
        "processes_observed": len(facts.processes),
        "systemd_running": facts.systemd_running,
        "expired_waivers": [
            {"control_id": w.control_id, "expires": w.expires, "justification": w.justification}
            for w in (waivers.expired if waivers else ())
        ],
    }


def run_audit(options: AuditOptions, waivers: Path | None, console: Console) -> Report:
    """Audit this machine as `options` say; bad input raises InputError before any work."""
    waiver_set = load_waivers(waivers, set(load_catalog())) if waivers else None
    started = _now()
    facts = collect(options, progress=console.info)
    controls = run_controls(facts, waiver_set)
    for waiver in waiver_set.expired if waiver_set else ():
        console.info(f"waiver for {waiver.control_id} expired on {waiver.expires}: ignored")
    return Report(
        tool_version=__version__,
        host=host_info(facts.hostname),
        started_at=started,
        finished_at=_now(),
        privilege={
            "euid": facts.privilege.euid,
            "is_root": facts.privilege.is_root,
            "note": facts.privilege.note,
        },
        engine=engine_section(facts.engine),
        controls=controls,
        incomplete=facts.incomplete,
        integrity=integrity_section(facts),
        extra=_extra(facts, waiver_set),
    )

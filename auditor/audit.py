"""One audit run: collect facts, evaluate every control, build the report.

Used by `offgrid audit` and `offgrid demo`; neither prints anything here except
progress lines through the Console.
"""

from __future__ import annotations

import platform
import socket
from datetime import UTC, datetime
from pathlib import Path

from auditor import __version__
from auditor.checks.catalog import load_catalog
from auditor.checks.runner import run_controls
from auditor.checks.waivers import load_waivers
from auditor.console import Console
from auditor.inventory.collect import collect
from auditor.inventory.interface import AuditOptions
from auditor.report.baseline import previous_audit
from auditor.report.from_facts import (
    engine_section,
    extra_section,
    integrity_section,
    privilege_section,
)
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


def run_audit(options: AuditOptions, waivers: Path | None, console: Console) -> Report:
    """Audit this machine as `options` say; bad input raises InputError before any work."""
    waiver_set = load_waivers(waivers, set(load_catalog())) if waivers else None
    started = _now()
    previous = None
    # the baseline matters only to a recorded source: no egress log, no history to verify
    recorded = options.egress_log is not None or options.seal_log is not None
    if options.history is not None and recorded:
        console.info(f"reading the previous egress baseline from {options.history}")
        previous = previous_audit(options.history, socket.gethostname())
    facts = collect(options, progress=console.info, previous=previous)
    controls = run_controls(facts, waiver_set)
    for waiver in waiver_set.expired if waiver_set else ():
        console.info(f"waiver for {waiver.control_id} expired on {waiver.expires}: ignored")
    return Report(
        tool_version=__version__,
        host=host_info(facts.hostname),
        started_at=started,
        finished_at=_now(),
        privilege=privilege_section(facts),
        engine=engine_section(facts.engine),
        controls=controls,
        incomplete=facts.incomplete,
        integrity=integrity_section(facts.integrity) if facts.integrity else None,
        extra=extra_section(facts, waiver_set),
    )

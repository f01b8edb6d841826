"""The fleet summary as HTML, Markdown or JSON: pure functions returning strings.

Templates only loop and print; labels, badges, ages and the verdict line are decided
here. The JSON form is checked against auditor/data/fleet.schema.json before it leaves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from auditor import __version__
from auditor.report.fleet import (
    FLEET_SCHEMA,
    BadFile,
    ControlSummary,
    Fleet,
    HistoryState,
    HostSummary,
    to_dict,
)
from auditor.report.templates import environment
from auditor.report.validate import InvalidReportError, load_schema

FORMATS = ("html", "markdown", "json")
SCHEMA_FILE = "fleet.schema.json"
_LABELS = {
    "pass": ("PASS", "pass"),
    "fail": ("FAIL", "fail"),
    "incomplete": ("INCOMPLETE", "error"),
    "none": ("NO CONTROLS", "not_applicable"),
    "stale": ("STALE", "error"),
    "invalid": ("NO VALID REPORT", "fail"),
    "crashed": ("AUDITOR FAILED", "fail"),
    "tampered": ("HISTORY TAMPERED", "fail"),
}


@dataclass(frozen=True)
class HostRow:
    name: str
    label: str
    badge: str  # CSS status class of the badge
    row: str  # CSS row class
    stale_note: bool  # the report is stale but its own verdict is shown
    counts: Mapping[str, int]
    file: str
    finished_at: str
    age: str
    failing: str
    auditor: str  # "ok", or why the last audit run failed
    history: str  # the fetched history's verification, in words


@dataclass(frozen=True)
class FleetView:
    title: str
    tool_version: str
    schema: str
    generated_at: str
    max_age: str
    verdict_kind: str
    verdict_headline: str
    verdict_detail: str
    cards: tuple[tuple[str, str, int], ...]
    hosts: tuple[HostRow, ...]
    controls: tuple[ControlSummary, ...]
    bad_files: tuple[BadFile, ...]


def _age(hours: float | None) -> str:
    if hours is None:
        return "-"
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"


def _detail(fleet: Fleet) -> str:
    if not fleet.hosts and not fleet.bad_files:
        return "No reports found: nothing is proven."
    parts = []
    for verdict, what in (
        ("fail", "failing"),
        ("incomplete", "incomplete"),
        ("stale", "stale"),
        ("invalid", "without a valid report"),
        ("crashed", "where the auditor itself failed"),
        ("tampered", "whose report history fails verification"),
    ):
        count = sum(1 for h in fleet.hosts if h.verdict == verdict)
        if count:
            parts.append(f"{count} host(s) {what}")
    stale_failing = sum(1 for h in fleet.hosts if h.stale and h.verdict != "stale")
    if stale_failing:
        parts.append(f"{stale_failing} of them also stale")
    if fleet.bad_files:
        parts.append(f"{len(fleet.bad_files)} unreadable or invalid file(s)")
    if not parts:
        return f"All {len(fleet.hosts)} host(s) passed with a fresh report."
    return "; ".join(parts) + "."


def _history_text(state: HistoryState | None) -> str:
    if state is None:
        return "not fetched"
    if not state.intact:
        more = f" (+{len(state.problems) - 1} more)" if len(state.problems) > 1 else ""
        return f"TAMPERED: {state.problems[0]}{more}"
    head = f", head {state.head_hash[:16]}…" if state.head_hash else ""
    unchecked = "; HMACs not checked here (the key stays on the host)" if state.notes else ""
    return f"intact: {state.entries} entries{head}{unchecked}"


def _row(host: HostSummary) -> HostRow:
    label, badge = _LABELS[host.verdict]
    return HostRow(
        name=host.name,
        label=label,
        badge=badge,
        row=badge if host.verdict != "pass" else "pass",
        stale_note=host.stale and host.verdict != "stale",
        counts={k: host.counts.get(k, 0) for k in ("pass", "fail", "error", "waived")},
        file=host.file or "-",
        finished_at=host.finished_at or "",
        age=_age(host.age_hours),
        failing=", ".join(host.failing) or "-",
        auditor=host.auditor_run or "ok",
        history=_history_text(host.history),
    )


def build_view(fleet: Fleet) -> FleetView:
    count = len(fleet.hosts)
    passing = sum(1 for h in fleet.hosts if h.verdict == "pass")
    return FleetView(
        title="offgrid fleet summary",
        tool_version=__version__,
        schema=FLEET_SCHEMA,
        generated_at=fleet.generated_at,
        max_age=f"{fleet.max_age_hours:g} h",
        verdict_kind="pass" if fleet.verdict == "pass" else "fail",
        verdict_headline="PASS" if fleet.verdict == "pass" else "FINDINGS",
        verdict_detail=_detail(fleet),
        cards=(
            ("total", "Hosts", count),
            ("pass", "Passing", passing),
            ("fail", "Failing", sum(1 for h in fleet.hosts if h.verdict == "fail")),
            ("error", "Stale", sum(1 for h in fleet.hosts if h.stale)),
            ("not_applicable", "Invalid files", len(fleet.bad_files)),
        ),
        hosts=tuple(_row(h) for h in fleet.hosts),
        controls=fleet.controls,
        bad_files=fleet.bad_files,
    )


def render_html(fleet: Fleet) -> str:
    return environment().get_template("fleet.html.j2").render(f=build_view(fleet))


def render_markdown(fleet: Fleet) -> str:
    return environment().get_template("fleet.md.j2").render(f=build_view(fleet))


@cache
def _validator() -> Draft202012Validator:
    schema = load_schema(SCHEMA_FILE)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(data: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in _validator().iter_errors(data)]


def render_json(fleet: Fleet) -> str:
    data = to_dict(fleet)
    errors = schema_errors(data)
    if errors:
        raise InvalidReportError(
            "fleet summary does not match its schema: " + "; ".join(errors[:5])
        )
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def render(fleet: Fleet, fmt: str) -> str:
    renderers = {"html": render_html, "markdown": render_markdown, "json": render_json}
    return renderers[fmt](fleet)

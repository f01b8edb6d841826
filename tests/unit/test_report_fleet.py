"""`offgrid report fleet`: newest report per host, stale and invalid hosts, every format."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from auditor.cli import main
from auditor.console import Console
from auditor.report import history
from auditor.report.fleet import aggregate, to_dict
from auditor.report.fleet_format import render_html, render_json, render_markdown, schema_errors
from auditor.verdicts import Status
from tests.unit.report_variants import all_pass, report_data

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
EVIL_HOST = '<img src=x onerror=alert(1)>&"|'


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def _put(root: Path, host: str, name: str, data: dict[str, Any] | str) -> None:
    directory = root / host
    directory.mkdir(parents=True, exist_ok=True)
    text = data if isinstance(data, str) else json.dumps(data)
    (directory / name).write_text(text)


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    root = tmp_path / "reports"
    # ws-good: an older failing report and a newer passing one: the newest counts
    _put(root, "ws-good", "audit-1.json", report_data("ws-good", "2026-11-23T02:00:00+00:00"))
    _put(root, "ws-good", "audit-2.json", all_pass("ws-good", "2026-11-24T02:00:00+00:00"))
    # ws-fail: fresh, two controls failing, plus a file that is not JSON
    failing = report_data("ws-fail", "2026-11-24T03:00:00Z", {"OG-NET-01": Status.FAIL})
    _put(root, "ws-fail", "audit-1.json", failing)
    _put(root, "ws-fail", "broken.json", "{not json")
    # ws-old: passed, but three days ago: the timer stopped
    _put(root, "ws-old", "audit-1.json", all_pass("ws-old", "2026-11-21T02:00:00+00:00"))
    # ws-none: only a file that is JSON but not a report
    _put(root, "ws-none", "audit-1.json", {"hello": "world"})
    # a host name that must be escaped everywhere
    _put(root, EVIL_HOST, "audit-1.json", all_pass(EVIL_HOST, "2026-11-24T01:00:00+00:00"))
    (root / "empty-dir").mkdir()
    (root / "fleet.json").write_text("{}")  # the summary itself, written beside the hosts
    return root


def test_aggregate_per_host(fleet_dir: Path) -> None:
    fleet = aggregate(fleet_dir, now=NOW)
    hosts = {h.name: h for h in fleet.hosts}
    assert sorted(hosts) == sorted(["ws-good", "ws-fail", "ws-old", "ws-none", EVIL_HOST])
    assert hosts["ws-good"].verdict == "pass" and hosts["ws-good"].file == "audit-2.json"
    assert hosts["ws-good"].age_hours == 10.0
    assert hosts["ws-fail"].verdict == "fail"
    assert hosts["ws-fail"].failing == ("OG-NET-01", "OG-NET-03")
    assert hosts["ws-old"].verdict == "stale" and hosts["ws-old"].stale
    assert hosts["ws-old"].report_verdict == "pass" and hosts["ws-old"].age_hours == 82.0
    assert hosts["ws-none"].verdict == "invalid" and hosts["ws-none"].file is None
    assert fleet.verdict == "fail"
    bad = {(b.host, b.file): b.reason for b in fleet.bad_files}
    assert bad[("ws-fail", "broken.json")].startswith("not JSON")
    assert bad[("ws-none", "audit-1.json")].startswith("not a valid offgrid report")
    by_id = {c.id: c for c in fleet.controls}
    assert by_id["OG-NET-01"].failing_hosts == ("ws-fail",)
    # most failing hosts first; a control that only errors comes after every failure
    assert [c.id for c in fleet.controls] == ["OG-NET-01", "OG-NET-03", "OG-CFG-01"]
    assert by_id["OG-CFG-01"].error_hosts == ("ws-fail",)
    assert fleet.findings == 5  # ws-fail, ws-old, ws-none + two bad files


def test_max_age_decides_staleness(fleet_dir: Path) -> None:
    hosts = {h.name: h for h in aggregate(fleet_dir, now=NOW, max_age_hours=100).hosts}
    assert hosts["ws-old"].verdict == "pass" and not hosts["ws-old"].stale
    hosts = {h.name: h for h in aggregate(fleet_dir, now=NOW, max_age_hours=5).hosts}
    assert hosts["ws-good"].verdict == "stale"
    assert hosts["ws-fail"].verdict == "fail" and hosts["ws-fail"].stale  # fail stays fail


def test_all_fresh_and_passing_is_a_pass(tmp_path: Path) -> None:
    _put(tmp_path, "a", "r.json", all_pass("a", "2026-11-24T11:00:00Z"))
    _put(tmp_path, "b", "r.json", all_pass("b", "2026-11-24T10:00:00Z"))
    fleet = aggregate(tmp_path, now=NOW)
    assert fleet.verdict == "pass" and fleet.findings == 0 and fleet.controls == ()
    assert aggregate(tmp_path / "a", now=NOW).verdict == "fail"  # no host directories at all


def test_json_validates_against_the_schema(fleet_dir: Path) -> None:
    data = json.loads(render_json(aggregate(fleet_dir, now=NOW)))
    assert schema_errors(data) == []
    assert data["schema"] == "offgrid-fleet/2"
    broken = to_dict(aggregate(fleet_dir, now=NOW))
    broken["hosts"][0]["verdict"] = "great"
    assert schema_errors(broken)


def test_html_is_self_contained_and_escapes_host_names(fleet_dir: Path) -> None:
    html = render_html(aggregate(fleet_dir, now=NOW))
    assert not re.search(r"(?:https?:)?//[a-z0-9]", html, re.IGNORECASE)
    assert not re.search(r"<(?:script|link|img|iframe)\b", html, re.IGNORECASE)
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;&amp;" in html
    assert "--fail:#c62828" in html  # the report's own stylesheet, included
    assert "STALE" in html and "broken.json" in html and "NO VALID REPORT" in html


def test_markdown_escapes_host_names(fleet_dir: Path) -> None:
    text = render_markdown(aggregate(fleet_dir, now=NOW))
    assert not re.search(r"(?<!\\)<img", text)  # every < reaches the viewer escaped
    assert r'\<img src=x onerror=alert(1)\>\&"\|' in text
    hosts = text.split("## Hosts", 1)[1].split("## Controls", 1)[0]
    rows = [line for line in hosts.splitlines() if line.startswith("| ")]
    assert len(rows) == 6  # header and five hosts
    assert all(line.replace("\\|", "").count("|") == 12 for line in rows)  # no stray pipe


def test_cli_writes_files_and_exit_codes(fleet_dir: Path, tmp_path: Path) -> None:
    out_file = fleet_dir / "fleet.html"
    code, _, err = _run(["report", "fleet", str(fleet_dir), "--output", str(out_file)])
    assert code == 1 and out_file.read_text().startswith("<!DOCTYPE html>")
    assert "finding(s)" in err
    code, out, _ = _run(["report", "fleet", str(fleet_dir), "-f", "json", "--max-age", "1000"])
    assert code == 1 and json.loads(out)["verdict"] == "fail"
    code, _, err = _run(["report", "fleet", str(tmp_path / "missing")])
    assert code == 2 and "no such directory" in err
    code, _, err = _run(["report", "fleet", str(fleet_dir), "--max-age", "0"])
    assert code == 2 and "--max-age" in err
    clean = tmp_path / "clean"
    _put(clean, "a", "r.json", all_pass("a", datetime.now(UTC).isoformat()))
    code, out, _ = _run(["report", "fleet", str(clean), "-f", "markdown"])
    assert code == 0 and "**Verdict: PASS**" in out


def _fetched_history(root: Path, host: str, stamps: list[str]) -> Path:
    """reports/<host>/history/ as audit.yml fetches it: real appends, the key left behind."""
    directory = root / host / "history"
    for stamp in stamps:
        history.append(directory, all_pass(host, stamp))
    (directory / history.KEY_FILE).unlink()
    return directory


def test_a_tampered_history_makes_the_host_tampered(tmp_path: Path) -> None:
    stamps = ["2026-11-23T02:00:00Z", "2026-11-24T02:00:00Z"]
    for host in ("ws-intact", "ws-forged"):
        _put(tmp_path, host, "audit-2.json", all_pass(host, stamps[-1]))
        _fetched_history(tmp_path, host, stamps)
    forged = sorted((tmp_path / "ws-forged/history/reports").iterdir())[0]
    forged.write_bytes(forged.read_bytes().replace(b'"pass"', b'"fail"', 1))
    fleet = aggregate(tmp_path, now=NOW)
    hosts = {h.name: h for h in fleet.hosts}
    intact, tampered = hosts["ws-intact"], hosts["ws-forged"]
    assert intact.verdict == "pass" and intact.history is not None and intact.history.intact
    assert intact.history.entries == 2 and any("HMAC" in n for n in intact.history.notes)
    assert tampered.verdict == "tampered" and tampered.report_verdict == "pass"
    assert tampered.history is not None and "sha256" in tampered.history.problems[0]
    assert fleet.verdict == "fail"
    data = json.loads(render_json(fleet))
    by_name = {h["name"]: h for h in data["hosts"]}
    assert by_name["ws-forged"]["verdict"] == "tampered"
    assert by_name["ws-forged"]["history"]["intact"] is False
    assert by_name["ws-intact"]["history"]["entries"] == 2
    html = render_html(fleet)
    assert "HISTORY TAMPERED" in html and "whose report history fails verification" in html
    assert "TAMPERED: " in render_markdown(fleet)


def test_a_host_with_only_an_empty_history_is_listed(tmp_path: Path) -> None:
    (tmp_path / "ws-empty" / "history").mkdir(parents=True)
    hosts = {h.name: h for h in aggregate(tmp_path, now=NOW).hosts}
    assert hosts["ws-empty"].verdict == "tampered"
    assert hosts["ws-empty"].history is not None
    assert "no entry" in hosts["ws-empty"].history.problems[0]


def test_a_history_that_is_a_symlink_is_not_followed(tmp_path: Path) -> None:
    elsewhere = _fetched_history(tmp_path / "elsewhere", "ws-link", ["2026-11-24T02:00:00Z"])
    _put(
        tmp_path / "reports", "ws-link", "audit-1.json", all_pass("ws-link", "2026-11-24T02:00:00Z")
    )
    (tmp_path / "reports" / "ws-link" / "history").symlink_to(elsewhere)
    (host,) = aggregate(tmp_path / "reports", now=NOW).hosts
    assert host.verdict == "tampered" and host.history is not None
    assert "symbolic link" in host.history.problems[0]

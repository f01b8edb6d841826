"""The known-vulnerability table: OSV ranges, the wheel's entries, a bundle's newer table
(`offgrid bundle add-vulns`), which one the audit uses, and OG-VUL-01/02 on each."""

from __future__ import annotations

import dataclasses
import io
import json
from importlib import resources
from pathlib import Path

import pytest

from auditor.checks import vul
from auditor.cli import main
from auditor.console import Console
from auditor.inventory.interface import AuditOptions
from auditor.models import lockfile, vulnbundle
from auditor.models.vulndb import parse_entry, wheel_table
from auditor.verdicts import Status
from tests.unit.audit_facts import engine, facts

GO = {"ecosystem": "Go", "name": "github.com/ollama/ollama"}


def osv(vid: str, events: list[dict[str, str]], **more: object) -> dict[str, object]:
    return {
        "schema_version": "1.6.0",
        "id": vid,
        "modified": "2026-11-20T10:00:00Z",
        "summary": f"{vid} summary",
        "affected": [{"package": GO, "ranges": [{"type": "SEMVER", "events": events}]}],
        "references": [{"type": "ADVISORY", "url": f"https://example.invalid/{vid}"}],
        **more,
    }


@pytest.mark.parametrize(
    ("version", "events", "expected"),
    [
        ("0.1.33", [{"introduced": "0"}, {"fixed": "0.1.34"}], True),
        ("0.1.34", [{"introduced": "0"}, {"fixed": "0.1.34"}], False),
        ("v0.1.28-rc1", [{"introduced": "0"}, {"fixed": "0.1.29"}], True),
        ("0.17", [{"introduced": "0"}, {"fixed": "0.17.1"}], True),
        ("0.12.3", [{"introduced": "0"}, {"last_affected": "0.12.3"}], True),
        ("0.12.4", [{"introduced": "0"}, {"last_affected": "0.12.3"}], False),
        ("b5000", [{"introduced": "b4882"}, {"last_affected": "b9058"}], True),
        ("b9059", [{"introduced": "b4882"}, {"last_affected": "b9058"}], False),
        ("b4000", [{"introduced": "b4882"}, {"last_affected": "b9058"}], False),
        # two ranges in one list of events: affected in each, not between them
        ("0.3.0", [{"introduced": "0.1"}, {"fixed": "0.2"}, {"introduced": "0.4"}], False),
        ("0.5.0", [{"introduced": "0.1"}, {"fixed": "0.2"}, {"introduced": "0.4"}], True),
    ],
)
def test_osv_range_semantics(version: str, events: list[dict[str, str]], expected: bool) -> None:
    assert parse_entry(osv("X-1", events), "test").affects(version) is expected


def test_every_wheel_entry_has_a_source_and_a_known_package() -> None:
    table = wheel_table()
    assert len(table.entries) >= 12
    for entry in table.entries:
        assert entry.source.startswith("https://"), entry.id
        assert entry.product in ("ollama", "llama-cpp-python", "llama.cpp"), entry.id
        entry.affects("0.0.1")  # every range compares
        assert entry.verified or entry.note, entry.id


def test_missing_auth_cve_is_in_the_wheel_table() -> None:
    entry = next(e for e in wheel_table().entries if e.id == "CVE-2025-63389")
    assert entry.affects("0.12.3") and not entry.affects("0.12.4")
    assert "GHSA-f6mr-38g8-39rg" in entry.aliases
    result = vul.engine_version_not_vulnerable(facts(engine=engine(version="0.12.0")))
    assert result.status is Status.FAIL and "CVE-2025-63389" in result.summary


def test_vulnerable_ollama_fails_with_sources() -> None:
    result = vul.engine_version_not_vulnerable(facts(engine=engine(version="0.1.30")))
    assert result.status is Status.FAIL
    assert "CVE-2024-37032" in result.summary and "CVE-2024-28224" not in result.summary
    assert any("nvd.nist.gov" in e.value for e in result.evidence)


def test_unknown_package_and_bad_entries(tmp_path: Path) -> None:
    other = osv("X-2", [{"introduced": "0"}])
    other["affected"] = [{"package": {"ecosystem": "npm", "name": "left-pad"}, "ranges": []}]
    assert parse_entry(other, "t").product == ""
    with pytest.raises(Exception, match="non-empty string 'id'"):
        parse_entry({"modified": "2026-01-01T00:00:00Z"}, "t")
    with pytest.raises(Exception, match="cannot compare"):
        parse_entry(osv("X-3", [{"introduced": "0"}, {"fixed": "abc"}]), "t")


@pytest.fixture(autouse=True)
def older_wheel_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wheel's table as of mid-2026, so that a table checked since is the newer one."""
    older = dataclasses.replace(wheel_table(), date="2026-06-01")
    monkeypatch.setattr(vulnbundle, "wheel_table", lambda: older)


def _run(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def _entries(tmp_path: Path, *entries: dict[str, object]) -> Path:
    folder = tmp_path / "osv-export"
    folder.mkdir(exist_ok=True)
    for entry in entries:
        (folder / f"{entry['id']}.json").write_text(json.dumps(entry))
    return folder


def _bundle_with(tmp_path: Path, *extra: str) -> Path:
    new = osv("GHSA-new-0001", [{"introduced": "0"}, {"fixed": "0.40.0"}])
    source = _entries(tmp_path, new)
    bundle = tmp_path / "bundle"
    code, out, err = _run(
        "bundle", "add-vulns", bundle, source, "--source", "https://osv.dev/list", *extra
    )
    assert code == 0, err
    assert "pinned 1 OSV entries" in out
    return bundle


def test_add_vulns_pins_the_table_and_the_newer_one_is_used(tmp_path: Path) -> None:
    bundle = _bundle_with(tmp_path)
    lock_path = bundle / lockfile.LOCK_FILE
    pin = lockfile.load(lock_path).vulns
    assert pin is not None and pin.date == "2026-11-20" and pin.source == "https://osv.dev/list"
    assert [f.path for f in pin.files] == ["vulns/GHSA-new-0001.json"]
    selection = vulnbundle.select(lock_path)
    assert selection.table.origin == "bundle" and selection.bundle_problem is None
    # the wheel's entries the bundle's table lacks stay in use
    assert selection.kept_from_older == len(wheel_table().entries)
    audited = facts(engine=engine(version="0.33.0"), vulnerabilities=selection)
    result = vul.engine_version_not_vulnerable(audited)
    assert result.status is Status.FAIL and "GHSA-new-0001" in result.summary
    assert vul.engine_version_not_vulnerable(
        facts(engine=engine(version="0.1.30"), vulnerabilities=selection)
    ).summary.count("CVE-2024-37032")
    code, _, err = _run("bundle", "verify", bundle)
    assert code == 0, err


def test_an_older_bundle_table_does_not_replace_the_wheels(tmp_path: Path) -> None:
    bundle = _bundle_with(tmp_path, "--date", "2025-01-01")
    selection = vulnbundle.select(bundle / lockfile.LOCK_FILE)
    assert selection.table.origin == "wheel" and selection.bundle_date == "2025-01-01"
    assert any(e.id == "GHSA-new-0001" for e in selection.table.entries)


def test_altered_bundle_table_is_not_used_and_fails_og_vul_02(tmp_path: Path) -> None:
    bundle = _bundle_with(tmp_path)
    entry = bundle / "vulns/GHSA-new-0001.json"
    raw = json.loads(entry.read_text())
    raw["affected"][0]["ranges"][0]["events"] = [{"introduced": "0"}, {"fixed": "0.0.1"}]
    entry.write_text(json.dumps(raw))
    selection = vulnbundle.select(bundle / lockfile.LOCK_FILE)
    assert selection.table.origin == "wheel"
    assert "does not match its pin" in (selection.bundle_problem or "")
    result = vul.vulnerability_table_is_recent(facts(vulnerabilities=selection))
    assert result.status is Status.FAIL and "cannot be trusted" in result.summary
    code, _, _ = _run("bundle", "verify", bundle)
    assert code == 1


def test_og_vul_02_fails_on_an_old_table_and_passes_a_fresh_one() -> None:
    selection = vulnbundle.select(None)
    fresh = facts(vulnerabilities=selection, collected_at="2026-07-02T00:00:00+00:00")
    assert vul.vulnerability_table_is_recent(fresh).status is Status.PASS
    late = dataclasses.replace(fresh, collected_at="2026-12-01T00:00:00+00:00")
    result = vul.vulnerability_table_is_recent(late)
    assert result.status is Status.FAIL and "days old (limit 90)" in result.summary
    relaxed = dataclasses.replace(late, options=AuditOptions(max_vuln_age_days=365))
    assert vul.vulnerability_table_is_recent(relaxed).status is Status.PASS
    missing = dataclasses.replace(fresh, vulnerabilities=None)
    unanswered = vul.vulnerability_table_is_recent(missing)
    assert unanswered.status is Status.ERROR and "not loaded" in unanswered.summary


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ('{"id": "X"}', "'modified'"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_add_vulns_bad_input_is_one_line_exit_2(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    code, _, err = _run("bundle", "add-vulns", tmp_path / "b", bad, "--source", "x")
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "b/vulns").exists()


def test_add_vulns_refuses_a_future_date_and_keeps_the_old_table(tmp_path: Path) -> None:
    bundle = _bundle_with(tmp_path)
    before = (bundle / lockfile.LOCK_FILE).read_text()
    source = _entries(tmp_path, osv("GHSA-new-0002", [{"introduced": "0"}]))
    code, _, err = _run(
        "bundle", "add-vulns", bundle, source, "--source", "s", "--date", "2999-01-01"
    )
    assert code == 2 and "in the future" in err
    assert (bundle / lockfile.LOCK_FILE).read_text() == before
    assert sorted(p.name for p in (bundle / "vulns").iterdir()) == ["GHSA-new-0001.json"]


def test_every_wheel_entry_says_whether_its_fix_is_confirmed_and_where_it_was_read() -> None:
    root = resources.files("auditor.data").joinpath("osv")
    for item in root.iterdir():
        if not item.name.endswith(".json"):
            continue
        own = json.loads(item.read_text("utf-8"))["database_specific"]["offgrid"]
        assert isinstance(own["fixed_version_confirmed"], bool), item.name
        assert own["sources"] and all(u.startswith("https://") for u in own["sources"]), item.name
        assert own["fixed_version_confirmed"] or own["note"], item.name


def test_a_version_past_an_unconfirmed_fix_is_not_a_clean_pass() -> None:
    result = vul.engine_version_not_vulnerable(facts(engine=engine(version="0.17.2")))
    assert result.status is Status.PASS
    assert "only by a fixed version unconfirmed by the vendor" in result.summary
    assert "CVE-2025-51471" in result.summary and "CVE-2025-63389" in result.summary
    assert "CVE-2026-7482" not in result.summary  # its fix is confirmed by the record
    doubtful = {e.label: e.value for e in result.evidence if "(fix unconfirmed)" in e.label}
    text = doubtful["CVE-2025-51471 (fix unconfirmed)"]
    assert "past 0.14.3, but the fixed version is unconfirmed" in text
    assert "github.com/github/advisory-database/pull/8826" in text


def test_a_hit_without_a_confirmed_fix_says_so() -> None:
    result = vul.engine_version_not_vulnerable(facts(engine=engine(version="0.12.0")))
    assert result.status is Status.FAIL
    hit = next(e.value for e in result.evidence if e.label == "CVE-2025-63389")
    assert "no fixed version named (fixed version unconfirmed)" in hit
    assert "fixed 0.12.4" not in hit
    old = vul.engine_version_not_vulnerable(facts(engine=engine(version="0.1.40")))
    hit = next(e.value for e in old.evidence if e.label == "CVE-2024-39720")
    assert "fixed 0.1.46 per the table, but the fixed version is unconfirmed" in hit


def test_og_vul_02_lists_the_unconfirmed_fixes_of_the_table() -> None:
    fresh = facts(vulnerabilities=vulnbundle.select(None), collected_at="2026-12-02T00:00:00+00:00")
    evidence = {e.label: e.value for e in vul.vulnerability_table_is_recent(fresh).evidence}
    listed = evidence["fixed version unconfirmed"]
    assert "CVE-2025-63389" in listed and "CVE-2026-43629" in listed
    assert "CVE-2024-45436" not in listed


def test_an_osv_entry_marks_its_fix_unconfirmed_in_database_specific() -> None:
    raw = osv("X-2", [{"introduced": "0"}, {"fixed": "1.0"}])
    raw["database_specific"] = {"offgrid": {"fixed_version_confirmed": False, "note": "n",
                                            "sources": ["https://example.org/x"]}}  # fmt: skip
    entry = parse_entry(raw, "test")
    assert entry.fix_unconfirmed and entry.sources == ("https://example.org/x",)
    assert entry.past_range("1.0") and not entry.past_range("0.9")
    plain = parse_entry(osv("X-3", [{"introduced": "0"}, {"fixed": "1.0"}]), "test")
    assert not plain.fix_unconfirmed  # a database's own entry: its fixed event stands


def test_an_entry_exported_as_is_states_its_fix_unreviewed() -> None:
    plain = parse_entry(osv("X-4", [{"introduced": "0"}, {"fixed": "1.0"}]), "test")
    assert not plain.reviewed
    text = vul._fix_text(plain)
    assert text == "fixed 1.0 as the OSV entry states (not reviewed against the vendor)"
    raw = osv("X-5", [{"introduced": "0"}, {"fixed": "1.0"}])
    raw["database_specific"] = {"offgrid": {"fixed_version_confirmed": True}}
    reviewed = parse_entry(raw, "test")
    assert reviewed.reviewed and vul._fix_text(reviewed) == "fixed 1.0"
    assert all(entry.reviewed for entry in wheel_table().entries)

"""`offgrid report evidence`: a pack built from real histories (made by the history code) of
3 hosts over 30 nights, with one night missing, one waived failure and one tampered report."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from auditor.checks.catalog import load_catalog
from auditor.cli import main
from auditor.console import Console
from auditor.report import history
from auditor.report.evidence_pack import fixed_mtime
from auditor.report.model import to_dict
from auditor.verdicts import Status
from tests.unit.report_sample import _control, sample_report
from tests.unit.validators import oscal_errors, trestle_load

SINCE, UNTIL = "2026-09-01", "2026-09-30"
NIGHTS = [f"2026-09-{day:02d}" for day in range(1, 31)]
MISSING = ("ws-03", "2026-09-15")
WAIVED = ("ws-02", "2026-09-10")
TAMPERED = ("ws-01", "2026-09-20")
WAIVER = {
    "control_id": "OG-HRD-01",
    "justification": "GPU driver needs /dev access",
    "expires": "2026-12-31",
    "approved_by": "security@example.org",
}


def _run(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def _nightly(host: str, night: str) -> dict[str, Any]:
    """A nightly report in which every control of the catalog passed (but one waived)."""
    report = sample_report(benchmark=False, integrity=False)
    controls = tuple(_control(cid, Status.PASS, "ok") for cid in load_catalog())
    report = replace(
        report,
        host=replace(report.host, hostname=host),
        started_at=f"{night}T02:00:00+00:00",
        finished_at=f"{night}T02:00:07+00:00",
        controls=controls,
        incomplete=(),
    )
    data: dict[str, Any] = json.loads(json.dumps(to_dict(report)))
    if (host, night) == WAIVED:
        control = next(c for c in data["controls"] if c["id"] == "OG-HRD-01")
        control["status"], control["waiver"] = "fail", WAIVER
        data["summary"]["pass"] -= 1
        data["summary"]["waived"] += 1
    return data


@pytest.fixture(scope="module")
def histories(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("histories")
    made = []
    for host in ("ws-01", "ws-02", "ws-03"):
        directory = root / host
        for night in NIGHTS:
            if (host, night) != MISSING:
                history.append(directory, _nightly(host, night))
        made.append(directory)
    tampered = next(
        e for e in history.read_entries(root / TAMPERED[0]) if e.finished_at.startswith(TAMPERED[1])
    )
    path = history.report_path(root / TAMPERED[0], tampered)
    path.write_bytes(path.read_bytes().replace(b'"status":"pass"', b'"status":"fail"', 1))
    return made


@pytest.fixture(scope="module")
def pack(histories: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out") / "q3"
    code, stdout, _ = _run("report", "evidence", *histories, "--since", SINCE, "--until", UNTIL,
                           "--out", out)  # fmt: skip
    assert code == 1, stdout  # a tampered report is a finding
    return out


def _summary(pack: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pack / "evidence.json").read_text("utf-8"))
    return data


def _night(summary: dict[str, Any], host: str, night: str) -> dict[str, Any]:
    nights = next(h["nights"] for h in summary["hosts"] if h["host"] == host)
    found: dict[str, Any] = next(n for n in nights if n["night"] == night)
    return found


def test_pack_shows_the_missing_night(pack: Path) -> None:
    summary = _summary(pack)
    assert _night(summary, *MISSING)["status"] == "missing"
    (gap,) = [f for f in summary["findings"] if f["kind"] == "missing"]
    assert gap["host"] == MISSING[0] and gap["nights"] == [MISSING[1]]
    html = (pack / "index.html").read_text("utf-8")
    assert f'class="n-missing" title="{MISSING[1]}: no report"' in html


def test_pack_shows_the_waiver(pack: Path) -> None:
    summary = _summary(pack)
    assert _night(summary, *WAIVED)["status"] == "waived"
    (waiver,) = summary["waivers"]
    assert waiver == {
        "host": WAIVED[0],
        "control": "OG-HRD-01",
        "justification": WAIVER["justification"],
        "approved_by": WAIVER["approved_by"],
        "expires": WAIVER["expires"],
        "nights": [WAIVED[1]],
    }
    assert WAIVER["justification"] in (pack / "index.html").read_text("utf-8")


def test_pack_shows_the_tampering(pack: Path) -> None:
    summary = _summary(pack)
    assert summary["verdict"] == "fail"
    assert _night(summary, *TAMPERED)["status"] == "tampered"
    tampered = [f for f in summary["findings"] if f["kind"] in ("tampered", "history")]
    assert any("was modified" in f["text"] and f["host"] == TAMPERED[0] for f in tampered)
    assert summary["findings"][0]["kind"] == "tampered"  # altered evidence comes first
    (ws01,) = [h for h in summary["histories"] if h["hosts"] == [TAMPERED[0]]]
    assert (
        not ws01["intact"] and ws01["head"]["seq"] == 30 and len(ws01["head"]["entry_hash"]) == 64
    )
    intact = [h for h in summary["histories"] if h["intact"]]
    assert len(intact) == 2
    html = (pack / "index.html").read_text("utf-8")
    assert html.index('id="findings"') < html.index('id="calendar"')


def test_every_other_night_passes_and_reports_are_kept_as_stored(
    pack: Path, histories: list[Path]
) -> None:
    summary = _summary(pack)
    statuses = [n["status"] for h in summary["hosts"] for n in h["nights"]]
    assert len(statuses) == 90 and statuses.count("pass") == 87
    reports = sorted((pack / "reports").rglob("*.json"))
    assert len(reports) == 89
    stored = {hashlib.sha256(p.read_bytes()).hexdigest() for d in histories
              for p in (d / "reports").glob("*.json")}  # fmt: skip
    assert {hashlib.sha256(p.read_bytes()).hexdigest() for p in reports} == stored


def test_matrix_covers_five_frameworks(pack: Path) -> None:
    header = (pack / "matrix.csv").read_text("utf-8").splitlines()[0].split(",")
    assert header[3:8] == ["SOC 2", "GDPR", "HIPAA", "NIST 800-53", "ISO/IEC 27001:2022"]
    rows = {r["id"]: r for r in _summary(pack)["matrix"]}
    assert rows["OG-NET-01"]["references"]["iso27001"] == ["A.8.20", "A.8.22"]
    assert rows["OG-HRD-01"]["status"] == "tampered"  # its worst host-night
    assert rows["OG-HRD-01"]["nights"]["waived"] == 1


def test_manifest_checks_with_sha256sum(pack: Path) -> None:
    if shutil.which("sha256sum") is None:
        pytest.skip("sha256sum not installed")
    checked = subprocess.run(
        ["sha256sum", "--strict", "-c", "MANIFEST.sha256"], cwd=pack, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    listed = {
        line.split("  ", 1)[1] for line in (pack / "MANIFEST.sha256").read_text().splitlines()
    }
    on_disk = {str(p.relative_to(pack)) for p in pack.rglob("*") if p.is_file()}
    assert listed == on_disk - {"MANIFEST.sha256"}


def test_rebuilding_gives_identical_bytes(
    pack: Path, histories: list[Path], tmp_path: Path
) -> None:
    again = tmp_path / "elsewhere"
    code, _, _ = _run("report", "evidence", *histories, "--since", SINCE, "--until", UNTIL,
                      "--out", again)  # fmt: skip
    assert code == 1
    first = pack.with_name("q3.tar.gz").read_bytes()
    assert again.with_name("elsewhere.tar.gz").read_bytes() == first
    digest = hashlib.sha256(first).hexdigest()
    assert pack.with_name("q3.tar.gz.sha256").read_text() == f"{digest}  q3.tar.gz\n"
    for path in pack.rglob("*"):
        if path.is_file():
            assert (again / path.relative_to(pack)).read_bytes() == path.read_bytes(), path
    # rebuilding in place replaces the earlier pack, with the same bytes
    code, _, _ = _run("report", "evidence", *histories, "--since", SINCE, "--until", UNTIL,
                      "--out", again)  # fmt: skip
    assert code == 1 and again.with_name("elsewhere.tar.gz").read_bytes() == first


def test_tarball_is_normalized(pack: Path) -> None:
    with tarfile.open(pack.with_name("q3.tar.gz")) as archive:
        members = archive.getmembers()
    names = [m.name for m in members]
    top = f"offgrid-evidence-{SINCE}-{UNTIL}"
    assert names[0] == top and all(n.startswith(top) for n in names)
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
    assert {m.mtime for m in members} == {fixed_mtime(UNTIL)}
    files = sorted(n for n, m in zip(names, members, strict=True) if m.isfile())
    assert files == [n for n in names if n in files]  # entries in sorted order
    assert f"{top}/index.html" in names and f"{top}/MANIFEST.sha256" in names


def test_oscal_of_the_period_passes_nist_schema_and_trestle(pack: Path) -> None:
    path = pack / "assessment-results.oscal.json"
    document = json.loads(path.read_text("utf-8"))
    assert oscal_errors(document) == []
    results = document["assessment-results"]["results"]
    assert len(results) == 88 + 1  # every trusted report (not the tampered one), and coverage
    coverage = results[-1]
    kinds = sorted(p["value"] for f in coverage["findings"] for p in f["props"])
    assert "missing" in kinds and "tampered" in kinds
    loaded = trestle_load(path)
    assert loaded.returncode == 0, loaded.stderr[-2000:]


def test_signed_manifest_verifies(histories: list[Path], tmp_path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen (openssh-client) is not installed")
    key = tmp_path / "reviewer"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    out = tmp_path / "signed"
    code, _, _ = _run("report", "evidence", histories[1], "--since", SINCE, "--until", UNTIL,
                      "--out", out, "--ssh-key", key)  # fmt: skip
    assert code == 0  # ws-02 alone: every night reported, its one failure waived
    kind, blob = key.with_suffix(".pub").read_text().split()[:2]
    allowed = tmp_path / "allowed"
    allowed.write_text(f"reviewer {kind} {blob}\n")
    checked = subprocess.run(
        ["ssh-keygen", "-Y", "verify", "-n", "offgrid-evidence", "-f", str(allowed),
         "-I", "reviewer", "-s", str(out / "MANIFEST.sha256.sig")],
        input=(out / "MANIFEST.sha256").read_bytes(), capture_output=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr


def test_bad_input_is_one_line_exit_2(histories: list[Path], tmp_path: Path) -> None:
    code, _, err = _run("report", "evidence", histories[0], "--since", UNTIL, "--until", SINCE)
    assert code == 2 and "is before --since" in err
    code, _, err = _run("report", "evidence", tmp_path / "nope", "--since", SINCE, "--until", UNTIL)
    assert code == 2 and "no such history directory" in err
    code, _, err = _run("report", "evidence", histories[0], "--since", "Q3", "--until", UNTIL)
    assert code == 2 and "not a date" in err
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    code, _, err = _run("report", "evidence", histories[0], "--since", SINCE, "--until", UNTIL,
                        "--out", taken)  # fmt: skip
    assert code == 2 and "not an evidence pack" in err
    assert (taken / "notes.txt").read_text() == "mine"


# ---- small histories: one behaviour each ---------------------------------------------------


def _small(tmp_path: Path, failing: str | None = None, error: str | None = None) -> Path:
    directory = tmp_path / "h"
    for night in NIGHTS[:3]:
        data = _nightly("ws-09", night)
        for control in data["controls"]:
            if night == NIGHTS[1] and control["id"] in (failing, error):
                control["status"] = "fail" if control["id"] == failing else "error"
                data["summary"]["pass"] -= 1
                data["summary"][control["status"]] += 1
        history.append(directory, data)
    return directory


def _evidence_of(directory: Path, tmp_path: Path, *extra: str | Path) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "pack"
    code, _, _ = _run("report", "evidence", directory, "--since", NIGHTS[0], "--until",
                      NIGHTS[2], "--out", out, *extra)  # fmt: skip
    return code, _summary(out)


def test_an_intact_period_passes(tmp_path: Path) -> None:
    code, summary = _evidence_of(_small(tmp_path), tmp_path)
    assert code == 0 and summary["verdict"] == "pass" and summary["findings"] == []


def test_an_unwaived_failure_is_a_finding_with_its_remediation(tmp_path: Path) -> None:
    code, summary = _evidence_of(_small(tmp_path, failing="OG-NET-03"), tmp_path)
    assert code == 1 and summary["verdict"] == "fail"
    (finding,) = summary["findings"]
    assert (finding["kind"], finding["control"], finding["nights"]) == (
        "fail",
        "OG-NET-03",
        [NIGHTS[1]],
    )
    assert finding["remediation"] == load_catalog()["OG-NET-03"].remediation
    html = (tmp_path / "pack" / "index.html").read_text("utf-8")
    assert "OG-NET-03" in html[html.index('id="findings"') : html.index('id="calendar"')]


def test_an_unevaluated_control_leaves_the_period_unproven(tmp_path: Path) -> None:
    code, summary = _evidence_of(_small(tmp_path, error="OG-CFG-01"), tmp_path)
    assert code == 3 and summary["verdict"] == "incomplete"
    assert [f["kind"] for f in summary["findings"]] == ["error"]


def test_an_unsigned_head_is_a_finding_when_signatures_are_required(tmp_path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen (openssh-client) is not installed")
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    kind, blob = key.with_suffix(".pub").read_text().split()[:2]
    allowed = tmp_path / "allowed"
    allowed.write_text(f"auditor {kind} {blob}\n")
    code, summary = _evidence_of(_small(tmp_path), tmp_path, "--allowed-signers", allowed)
    assert code == 1
    (finding,) = summary["findings"]
    assert finding["kind"] == "history" and "the head is not signed" in finding["text"]


def test_index_needs_nothing_outside_the_pack(pack: Path) -> None:
    html = (pack / "index.html").read_text("utf-8")
    assert "<script" not in html and "http://" not in html and "https://" not in html
    for link in re.findall(r'href="([^"]+)"', html):
        assert (pack / link).is_file(), link


def test_a_night_whose_audit_could_not_read_everything_is_a_finding(tmp_path: Path) -> None:
    directory = tmp_path / "h"
    for night in NIGHTS[:3]:
        data = _nightly("ws-09", night)
        if night == NIGHTS[2]:
            data["incomplete"] = ["/proc/812/environ: permission denied"]
        history.append(directory, data)
    code, summary = _evidence_of(directory, tmp_path)
    assert code == 3
    (finding,) = summary["findings"]
    assert finding["kind"] == "error" and finding["nights"] == [NIGHTS[2]]

"""playbooks/audit.yml's controller side, run for real by ansible-playbook over a local
connection: three "workstations" whose histories were made by the history code, one with a
tampered report. The play fetches every history (never its HMAC key), writes the fleet
summary and builds the evidence pack from the fetched copies. The nightly runner is a
stand-in that names the newest report (the auditor role's runner is tested on the booted
workstation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.report import history
from tests.unit.local_play import REPO
from tests.unit.report_variants import all_pass

pytestmark = pytest.mark.root  # fetch over a local connection as the workstation's root

NIGHTS = ("2026-10-01", "2026-10-02", "2026-10-03")
HOSTS = ("ws-a", "ws-b", "ws-c")


def _workstation(root: Path, host: str) -> dict[str, object]:
    histories = root / host / "var-lib-offgrid-history"
    for night in NIGHTS:
        entry = history.append(histories, all_pass(host, f"{night}T02:00:07+00:00"))
    latest = history.report_path(histories, entry)
    runner = root / host / "offgrid-audit-run"
    runner.write_text(f"#!/bin/sh\necho 'report json {latest}'\n")
    runner.chmod(0o755)
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ansible_become": False,
    }


@pytest.fixture(scope="module")
def played(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    tmp = tmp_path_factory.mktemp("audit-play")
    hosts = {host: _workstation(tmp, host) for host in HOSTS}
    tampered = tmp / "ws-b/var-lib-offgrid-history/reports"
    first = sorted(tampered.glob("000002-*.json"))[0]
    first.write_bytes(first.read_bytes().replace(b'"pass"', b'"fail"', 1))
    (tmp / "inventory.json").write_text(
        json.dumps({"all": {"children": {"workstations": {"hosts": hosts}}}})
    )
    reports = tmp / "reports"
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-local"),
    }
    extra = {
        "offgrid_audit_reports_dir": str(reports),
        "offgrid_audit_controller_offgrid": str(Path(sys.executable).with_name("offgrid")),
        "offgrid_audit_evidence_since": NIGHTS[0],
        "offgrid_audit_evidence_until": NIGHTS[-1],
        "offgrid_audit_evidence_root": str(tmp / "evidence"),
        # extra vars beat the play's own; templated per host
        "offgrid_audit_runner": f"{tmp}/{{{{ inventory_hostname }}}}/offgrid-audit-run",
        "offgrid_audit_history_dir": f"{tmp}/{{{{ inventory_hostname }}}}/var-lib-offgrid-history",
    }
    run = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(tmp / "inventory.json"),
         "--forks", "3", "-e", json.dumps(extra), str(REPO / "playbooks/audit.yml")],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    return reports, run


def test_the_play_succeeds_for_every_host(
    played: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    _, run = played
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    for host in HOSTS:
        assert f"{host}" in run.stdout.split("PLAY RECAP", 1)[1]


def test_every_history_is_fetched_without_its_key(
    played: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    reports, _ = played
    for host in HOSTS:
        fetched = reports / host / "history"
        assert (fetched / "chain.jsonl").is_file()
        assert len(list((fetched / "reports").glob("*.json"))) == len(NIGHTS)
        assert not (fetched / "history.key").exists()


def test_the_fleet_summary_names_every_host(
    played: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    reports, _ = played
    fleet = json.loads((reports / "fleet.json").read_text())
    assert sorted(h["name"] for h in fleet["hosts"]) == sorted(HOSTS)


def test_the_evidence_pack_is_built_from_the_fetched_histories(
    played: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    reports, _ = played
    pack = reports.parent / "evidence" / f"evidence-{NIGHTS[0]}-{NIGHTS[-1]}"
    summary = json.loads((pack / "evidence.json").read_text())
    assert [h["host"] for h in summary["hosts"]] == list(HOSTS)
    assert summary["verdict"] == "fail"
    (tampered,) = [f for f in summary["findings"] if f["kind"] == "tampered"]
    assert tampered["host"] == "ws-b" and tampered["nights"] == [NIGHTS[1]]
    assert all(h["directory"].startswith(str(reports)) for h in summary["histories"])
    assert pack.with_name(pack.name + ".tar.gz").is_file()

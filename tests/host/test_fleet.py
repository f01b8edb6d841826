"""playbooks/audit.yml against a fleet of four booted workstations at once.

The four are clones of the session's provisioned machine (tests/host/fleet.py: no site.yml of
their own); the offgrid_auditor role is applied to them as site.yml applies it, with each
host's egress probe on its own controller link and node_exporter's textfile enabled. One is
made to fail a control (the engine rebound to every address: OG-NET-01), one has
a report of its history altered after it was chained. One run of audit.yml on all four, in
parallel (ansible.cfg's forks), must fetch every history, write the fleet summary naming
every host with its state and build the evidence pack of those histories on the controller.
The first machine alone is audited once before, so the log gives the play's wall time for one
host and for four. The metrics textfile every run writes for node_exporter must be readable
by an unprivileged `prometheus` user, by nobody else, and pass promtool.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.host import log
from tests.host.bundle import TestBundle, site_vars
from tests.host.fleet import Fleet, assert_not_named, boot_clones, fleet_of
from tests.host.inhost import (
    DROPIN_DIR,
    LLAMACPP_PORT,
    LLAMACPP_UNIT,
    engine_listeners,
    probe_listener,
    probe_target,
    restart_engine,
)
from tests.host.workstation import REPO, PlaybookRun, Workstation
from tests.unit.validators import promtool_check

# The first test's setup may provision the session's machine (when no earlier test did), then
# clones four, applies the auditor role and audits twice: more than one test's 900 s on a
# loaded 2-core machine.
pytestmark = [pytest.mark.host, pytest.mark.root, pytest.mark.timeout(1800)]

AUDIT_PLAYBOOK = REPO / "playbooks" / "audit.yml"
AUDITOR_ROLE_PLAYBOOK = Path(__file__).resolve().parent / "auditor_role.yml"
HISTORY = "/var/lib/offgrid/history"
REPORTS = "/var/lib/offgrid/reports"
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
TEXTFILE = f"{TEXTFILE_DIR}/offgrid.prom"
OVERRIDE_FILE = f"{DROPIN_DIR}/override.conf"
# As Debian's prometheus-node-exporter creates its user: a system user with its own group.
PROMETHEUS_USER = (
    "useradd --system --user-group --no-create-home --home-dir /var/lib/prometheus "
    "--shell /usr/sbin/nologin prometheus"
)


@dataclass(frozen=True)
class FleetAudit:
    fleet: Fleet
    controller: Path  # what audit.yml wrote on the controller (reports/, evidence/)
    one_host: PlaybookRun
    four_hosts: PlaybookRun
    since: str
    until: str

    @property
    def reports(self) -> Path:
        return self.controller / "reports"

    def host(self, index: int) -> Workstation:
        return self.fleet.machines[index]


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _night() -> str:
    return datetime.now(UTC).date().isoformat()


def _audit_vars(controller: Path, since: str = "", until: str = "") -> dict[str, object]:
    return {
        "offgrid_audit_reports_dir": str(controller / "reports"),
        "offgrid_audit_evidence_root": str(controller / "evidence"),
        "offgrid_audit_evidence_since": since,
        "offgrid_audit_evidence_until": until,
    }


def _fresh_history(ws: Workstation) -> None:
    # The clone copied the seed's reports and key: start each host's history with its own.
    ws.run(f"find {HISTORY} {REPORTS} -mindepth 1 -delete")


def _plant_failure(ws: Workstation) -> None:
    ws.run(
        f"sed -i 's/OFFGRID_LLAMACPP_HOST=127.0.0.1/OFFGRID_LLAMACPP_HOST=0.0.0.0/' {OVERRIDE_FILE}"
    )
    restart_engine(ws)
    # the engine binds every address of its namespace (its own when sealed)
    assert engine_listeners(ws, LLAMACPP_UNIT, LLAMACPP_PORT) == [f"0.0.0.0:{LLAMACPP_PORT}"]


def _plant_tampering(ws: Workstation) -> None:
    """A chained report rewritten afterwards: one control's status changed in the stored
    bytes (any change to a chained report must show, whichever way it points)."""
    with probe_listener(ws):
        run = ws.run("/usr/local/libexec/offgrid-audit-run", check=False, timeout=300)
    assert run.returncode in (0, 1, 3), run.stderr
    stored = ws.run(f"ls {HISTORY}/reports/").stdout.split()
    assert len(stored) == 1, stored
    path = f"{HISTORY}/reports/{stored[0]}"
    ws.run(f'sed -i \'s/"status":"pass"/"status":"fail"/\' {path}')
    ws.run(f'grep -q \'"status":"fail"\' {path}')


@pytest.fixture(scope="module")
def fleet(
    provisioned: Workstation, test_bundle: TestBundle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    base = f"ogf-{os.getpid()}"
    with contextlib.ExitStack() as stack:
        machines = boot_clones(provisioned, [f"{base}-{n}" for n in (1, 2, 3, 4)], stack)
        for ws in machines:
            ws.run(PROMETHEUS_USER)
            _fresh_history(ws)
        probes = {ws.name: {"offgrid_auditor_egress_probe": probe_target(ws)} for ws in machines}
        fleet = stack.enter_context(
            fleet_of(machines, tmp_path_factory.mktemp("fleet"), host_vars=probes)
        )
        settings = {**site_vars(test_bundle), "offgrid_auditor_textfile_enabled": True}
        applied = fleet.playbook(AUDITOR_ROLE_PLAYBOOK, settings)
        log.info(f"the auditor role on {len(machines)} clones took {applied.duration_s:.0f} s")
        for ws in machines:
            assert_not_named(ws, provisioned.host_ip)
            # the nightly timer must not add a history entry the test did not plan
            ws.run("systemctl stop offgrid-audit.timer")
        yield fleet


@pytest.fixture(scope="module")
def audited(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> FleetAudit:
    controller = tmp_path_factory.mktemp("controller")
    seed, failing, tampered = fleet.machines[0], fleet.machines[1], fleet.machines[2]
    since = _night()
    _plant_failure(failing)
    _plant_tampering(tampered)
    with contextlib.ExitStack() as probes:
        for ws in fleet.machines:
            probes.enter_context(probe_listener(ws))
        one = fleet.playbook(AUDIT_PLAYBOOK, _audit_vars(controller), limit=(seed,))
        until = _night()
        four = fleet.playbook(AUDIT_PLAYBOOK, _audit_vars(controller, since, until))
    log.info(
        f"playbooks/audit.yml wall time: 1 host {one.duration_s:.1f} s, "
        f"{len(fleet.machines)} hosts {four.duration_s:.1f} s "
        f"(ratio {four.duration_s / one.duration_s:.2f})"
    )
    return FleetAudit(fleet, controller, one, four, since, until)


def test_the_play_ran_on_every_host_in_one_run(audited: FleetAudit) -> None:
    assert sorted(audited.four_hosts.stats) == sorted(audited.fleet.names)
    assert all(s.failed == 0 and s.unreachable == 0 for s in audited.four_hosts.stats.values())
    assert sorted(audited.one_host.stats) == [audited.host(0).name]


def test_the_hosts_were_audited_in_parallel(audited: FleetAudit) -> None:
    """Forks, not a loop: every host's audit of the fleet run started before any finished."""
    spans = []
    for ws in audited.fleet.machines:
        reports = [
            json.loads(p.read_text()) for p in (audited.reports / ws.name).glob("audit-*.json")
        ]
        newest = max(reports, key=lambda r: r["finished_at"])
        spans.append((_instant(newest["started_at"]), _instant(newest["finished_at"])))
    assert max(start for start, _ in spans) < min(end for _, end in spans), spans


def test_every_history_is_fetched_without_its_key(audited: FleetAudit) -> None:
    for ws in audited.fleet.machines:
        fetched = audited.reports / ws.name / "history"
        chain = (fetched / "chain.jsonl").read_text().splitlines()
        expected = 2 if ws is audited.host(0) or ws is audited.host(2) else 1
        assert len(chain) == expected, (ws.name, chain)
        assert not (fetched / "history.key").exists()
        assert len(list((fetched / "reports").iterdir())) == expected


def test_the_fleet_summary_names_every_host_with_its_state(audited: FleetAudit) -> None:
    summary = json.loads((audited.reports / "fleet.json").read_text())
    hosts = {h["name"]: h for h in summary["hosts"]}
    assert sorted(hosts) == sorted(audited.fleet.names)
    seed, failing, tampered, clean = audited.fleet.names
    assert hosts[seed]["verdict"] == "pass", hosts[seed]
    assert hosts[clean]["verdict"] == "pass", hosts[clean]
    assert hosts[failing]["verdict"] == "fail" and "OG-NET-01" in hosts[failing]["failing"]
    assert hosts[tampered]["verdict"] == "tampered"
    assert hosts[tampered]["report_verdict"] == "pass"  # its newest report alone looks clean
    assert hosts[tampered]["history"]["intact"] is False
    assert all(hosts[h]["history"]["intact"] for h in (seed, failing, clean))
    assert summary["verdict"] == "fail"
    page = (audited.reports / "fleet.html").read_text()
    assert all(name in page for name in audited.fleet.names)
    assert "HISTORY TAMPERED" in page


def test_the_evidence_pack_is_built_from_the_fetched_histories(audited: FleetAudit) -> None:
    pack = audited.controller / "evidence" / f"evidence-{audited.since}-{audited.until}"
    archive = pack.with_name(f"{pack.name}.tar.gz")
    digest = archive.with_name(f"{archive.name}.sha256").read_text().split()[0]
    check = subprocess.run(["sha256sum", str(archive)], capture_output=True, text=True, check=True)
    assert check.stdout.split()[0] == digest
    evidence = json.loads((pack / "evidence.json").read_text())
    seed, failing, tampered, clean = audited.fleet.names
    nights = {h["host"]: {n["status"] for n in h["nights"]} for h in evidence["hosts"]}
    assert sorted(nights) == sorted(audited.fleet.names)
    assert "tampered" in nights[tampered] and "fail" in nights[failing]
    # a run that crossed midnight UTC leaves a night some host has no report for
    clean_nights = {"pass"} if audited.since == audited.until else {"pass", "missing"}
    for host in (seed, clean):
        assert "pass" in nights[host] and nights[host] <= clean_nights, (host, nights[host])
    kinds = {(f["kind"], f.get("host")) for f in evidence["findings"]}
    assert ("tampered", tampered) in kinds and ("fail", failing) in kinds
    assert len(evidence["histories"]) == len(audited.fleet.machines)


def test_the_textfile_is_readable_by_node_exporter_only(audited: FleetAudit) -> None:
    for ws in audited.fleet.machines:
        modes = ws.run(f"stat -c '%a %U %G' {TEXTFILE_DIR} {TEXTFILE}").stdout.splitlines()
        assert modes == ["2750 root prometheus", "644 root prometheus"], (ws.name, modes)
        text = ws.run(f"runuser -u prometheus -- cat {TEXTFILE}").stdout
        assert "offgrid_control_status" in text
        checked = promtool_check(text)
        assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked
        denied = ws.run(f"runuser -u nobody -- cat {TEXTFILE}", check=False)
        assert denied.returncode != 0 and "Permission denied" in denied.stderr
        touched = ws.run(f"runuser -u prometheus -- touch {TEXTFILE}", check=False)
        assert touched.returncode != 0
        leftovers = ws.run(f"ls -A {TEXTFILE_DIR}").stdout.split()
        assert leftovers == ["offgrid.prom"], leftovers  # no temporary left beside it
    failing = audited.host(1).run(f"grep 'id=\"OG-NET-01\"' {TEXTFILE}").stdout
    assert 'status="fail"' in failing, failing

"""playbooks/site.yml with the llamacpp engine on the offline workstation, checked from
outside (testinfra over SSH, a connect from the controller) and from inside (offgrid audit)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.host.bundle import TestBundle
from tests.host.inhost import (
    DROPIN_DIR,
    LLAMACPP_PORT,
    LLAMACPP_UNIT,
    audit,
    engine_listeners,
    probe_listener,
    provisioned_vars,
)
from tests.host.workstation import REPO, SITE_PLAYBOOK, Workstation

pytestmark = [pytest.mark.host, pytest.mark.root]


@pytest.fixture(scope="module")
def host(provisioned: Workstation) -> Any:
    return provisioned.testinfra_host()


def test_first_run_provisions_without_failures(provisioned: Workstation) -> None:
    assert provisioned.provisioning is not None
    stats = provisioned.provisioning.stats[provisioned.name]
    assert stats.failed == 0 and stats.unreachable == 0
    assert stats.changed > 0


def test_engine_service_is_active_and_enabled(host: Any) -> None:
    service = host.service(LLAMACPP_UNIT)
    assert service.is_running
    assert service.is_enabled


def test_engine_listens_on_loopback_only(host: Any, provisioned: Workstation) -> None:
    # the host side (the engine, or the sealed engine's proxy held by systemd): loopback only
    assert host.socket(f"tcp://127.0.0.1:{LLAMACPP_PORT}").is_listening
    listeners = provisioned.run(f"ss -Htln 'sport = :{LLAMACPP_PORT}'").stdout.split("\n")
    local = [line.split()[3] for line in listeners if line.strip()]
    assert local == [f"127.0.0.1:{LLAMACPP_PORT}"]
    # the engine's own listener, in its network namespace (the host's unless sealed): loopback
    assert engine_listeners(provisioned, LLAMACPP_UNIT, LLAMACPP_PORT) == [
        f"127.0.0.1:{LLAMACPP_PORT}"
    ]


def test_engine_is_sealed_by_default(provisioned: Workstation) -> None:
    """site.yml seals the engine unless told not to: its unit has a network namespace of its
    own, and the host's loopback port is held by systemd for the seal's proxy."""
    shown = provisioned.run(f"systemctl show -p PrivateNetwork --value {LLAMACPP_UNIT}")
    assert shown.stdout.strip() == "yes"
    main = provisioned.run(f"systemctl show -p MainPID --value {LLAMACPP_UNIT}").stdout.strip()
    assert (
        provisioned.run(f"readlink /proc/{main}/ns/net").stdout
        != provisioned.run("readlink /proc/1/ns/net").stdout
    )
    holders = provisioned.run(f"ss -Htlnp 'sport = :{LLAMACPP_PORT}'").stdout
    assert '("systemd",pid=1,' in holders, holders


def test_engine_port_is_closed_from_outside_the_namespace(provisioned: Workstation) -> None:
    assert provisioned.port_open_from_host(22)  # the scan itself reaches the workstation
    assert not provisioned.port_open_from_host(LLAMACPP_PORT)


def test_engine_serves_chat_under_its_sandbox(provisioned: Workstation) -> None:
    body = (
        '{"model": "SmolLM2-135M-Instruct.Q4_1", "max_tokens": 8, '
        '"messages": [{"role": "user", "content": "Say hi"}]}'
    )
    reply = provisioned.run(
        f"curl -sf --max-time 60 -H 'Content-Type: application/json' -d '{body}' "
        f"http://127.0.0.1:{LLAMACPP_PORT}/v1/chat/completions"
    ).stdout
    assert '"completion_tokens"' in reply and '"content"' in reply


def test_override_binds_loopback_without_proxies(host: Any) -> None:
    override = host.file(f"{DROPIN_DIR}/override.conf")
    assert override.user == "root" and override.mode == 0o644
    text = override.content_string
    assert text.startswith("#\n# Ansible managed")
    assert 'Environment="OFFGRID_LLAMACPP_HOST=127.0.0.1"' in text
    assert 'Environment="VERBOSE=false"' in text
    assert "UnsetEnvironment=HOST PORT CONFIG_FILE" in text
    assert not re.search(r"^Environment=.*proxy", text, re.IGNORECASE | re.MULTILINE)


def test_hardening_and_egress_dropins(host: Any) -> None:
    hardening = host.file(f"{DROPIN_DIR}/hardening.conf").content_string
    for directive in (
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateDevices=yes",
        "CapabilityBoundingSet=\n",
        "MemoryDenyWriteExecute=yes",
        "PrivateUsers=yes",
    ):
        assert directive in hardening
    egress = host.file(f"{DROPIN_DIR}/egress.conf").content_string
    assert "IPAddressDeny=any" in egress and "IPAddressAllow=localhost" in egress
    assert "Requires=offgrid-egress.service" in egress
    shown = host.run(f"systemctl show -p IPAddressDeny -p NoNewPrivileges {LLAMACPP_UNIT}").stdout
    properties = dict(line.split("=", 1) for line in shown.splitlines())
    assert properties["NoNewPrivileges"] == "yes"
    assert set(properties["IPAddressDeny"].split()) == {"0.0.0.0/0", "::/0"}


def test_nft_rule_counts_the_service_users_egress(provisioned: Workstation) -> None:
    uid = provisioned.run("id -u llamacpp").stdout.strip()
    table = provisioned.run("nft list table inet offgrid_egress").stdout
    assert re.search(
        rf'meta skuid "?(llamacpp|{uid})"? counter packets \d+ bytes \d+ reject', table
    )
    assert "OG-NET-04" in table
    assert "dport 443" not in table  # never a blanket port block


def test_service_user_and_file_modes(host: Any, provisioned: Workstation) -> None:
    user = host.user("llamacpp")
    assert user.exists and user.shell == "/usr/sbin/nologin" and user.uid < 1000
    main_pid = provisioned.run(f"systemctl show -p MainPID --value {LLAMACPP_UNIT}").stdout.strip()
    assert provisioned.run(f"ps -o user= -p {main_pid}").stdout.strip() == "llamacpp"
    model = host.file("/var/lib/offgrid/models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert (model.user, model.group, model.mode) == ("root", "llamacpp", 0o640)
    assert host.file("/var/lib/offgrid/models/gguf").mode == 0o750
    assert host.file("/var/lib/offgrid/reports").mode == 0o750
    assert host.file("/opt/offgrid/llamacpp/current").is_symlink
    assert not host.file(
        "/var/lib/offgrid/models/gguf/.staging/SmolLM2-135M-Instruct.Q4_1.gguf"
    ).exists


def test_live_model_matches_its_pin(provisioned: Workstation, test_bundle: TestBundle) -> None:
    digest = provisioned.run(
        "sha256sum /var/lib/offgrid/models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf"
    ).stdout.split()[0]
    assert digest == test_bundle.gguf_sha256


def test_unit_exposure_meets_the_goal(provisioned: Workstation) -> None:
    out = provisioned.run(f"systemd-analyze security --no-pager {LLAMACPP_UNIT}").stdout
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
    assert match, out
    assert float(match.group(1)) <= 2.5, out


def test_every_control_passes_inside_the_host(provisioned: Workstation) -> None:
    run = audit(provisioned)
    assert run.not_passing() == {}
    assert run.rc == 0
    assert "enforcement verified" in run.summaries["OG-NET-04"]
    assert run.statuses["OG-NET-06"] == "pass", run.summaries["OG-NET-06"]  # the seal, proved


def test_nightly_audit_unit_writes_timestamped_reports(provisioned: Workstation) -> None:
    with probe_listener(provisioned):
        provisioned.run("systemctl start offgrid-audit.service")
    assert (
        provisioned.run("systemctl is-failed offgrid-audit.service", check=False).stdout.strip()
        != "failed"
    )
    listing = provisioned.run("ls /var/lib/offgrid/reports").stdout.split()
    assert "latest.json" in listing
    assert any(re.fullmatch(r"audit-\d{8}T\d{6}Z\.json", name) for name in listing)
    assert any(re.fullmatch(r"audit-\d{8}T\d{6}Z\.html", name) for name in listing)
    latest = json.loads(provisioned.run("cat /var/lib/offgrid/reports/latest.json").stdout)
    net04 = next(c for c in latest["controls"] if c["id"] == "OG-NET-04")
    assert "enforcement verified" in net04["summary"]  # the probe ran from the sandboxed unit
    timer = provisioned.run(
        "systemctl show -p Persistent -p UnitFileState offgrid-audit.timer"
    ).stdout
    assert "Persistent=yes" in timer and "UnitFileState=enabled" in timer


def test_second_run_changes_nothing(provisioned: Workstation, test_bundle: TestBundle) -> None:
    run = provisioned.playbook(SITE_PLAYBOOK, extra_vars=provisioned_vars(provisioned, test_bundle))
    assert run.stats[provisioned.name].changed == 0, run.changed_tasks()


def test_check_mode_on_the_provisioned_host_reports_no_change(
    provisioned: Workstation, test_bundle: TestBundle
) -> None:
    run = provisioned.playbook(
        SITE_PLAYBOOK, extra_vars=provisioned_vars(provisioned, test_bundle), check_mode=True
    )
    assert run.stats[provisioned.name].changed == 0, run.changed_tasks()


def test_audit_playbook_fetches_reports(provisioned: Workstation, tmp_path: Path) -> None:
    with probe_listener(provisioned):
        run = provisioned.playbook(
            REPO / "playbooks" / "audit.yml",
            extra_vars={"offgrid_audit_reports_dir": str(tmp_path)},
        )
    assert run.stats[provisioned.name].failed == 0
    fetched = sorted(p.suffix for p in (tmp_path / provisioned.name).iterdir() if p.is_file())
    assert fetched == [".html", ".json"]
    history = tmp_path / provisioned.name / "history"
    assert (history / "chain.jsonl").is_file() and not (history / "history.key").exists()

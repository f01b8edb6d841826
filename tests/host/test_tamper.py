"""Tamper with the provisioned workstation the way an admin or an attacker would, and check
the in-host audit names the right control. Every scenario restores the host and proves the
audit passes again, so scenarios stay independent."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.host.inhost import (
    DROPIN_DIR,
    LLAMACPP_PORT,
    LLAMACPP_UNIT,
    audit,
    engine_listeners,
    restart_engine,
)
from tests.host.workstation import Workstation

pytestmark = [pytest.mark.host, pytest.mark.root]

OVERRIDE = f"{DROPIN_DIR}/override.conf"
EGRESS = f"{DROPIN_DIR}/egress.conf"
TAMPER_DROPIN = f"{DROPIN_DIR}/zz-tamper.conf"
SEAL = "seal.conf"  # role offgrid_seal's drop-in


@pytest.fixture
def host(provisioned: Workstation) -> Iterator[Workstation]:
    """The provisioned host; afterwards its audit must pass again (the restore worked)."""
    provisioned.run(
        f"cp -a {OVERRIDE} /root/override.conf.orig && cp -a {EGRESS} /root/egress.conf.orig"
    )
    yield provisioned
    after = audit(provisioned)
    assert after.not_passing() == {}, "the scenario's restore left the host failing"


def _restore_dropins(ws: Workstation) -> None:
    ws.run(
        f"rm -f {TAMPER_DROPIN} && cp -a /root/override.conf.orig {OVERRIDE} "
        f"&& cp -a /root/egress.conf.orig {EGRESS} && systemctl restart offgrid-egress.service"
    )
    restart_engine(ws)


def test_rebind_to_all_addresses_fails_og_net_01(host: Workstation) -> None:
    host.run(
        f"sed -i 's/OFFGRID_LLAMACPP_HOST=127.0.0.1/OFFGRID_LLAMACPP_HOST=0.0.0.0/' {OVERRIDE}"
    )
    try:
        restart_engine(host)
        # the engine binds every address of its namespace (its own when sealed)
        assert engine_listeners(host, LLAMACPP_UNIT, LLAMACPP_PORT) == [f"0.0.0.0:{LLAMACPP_PORT}"]
        run = audit(host)
        assert run.statuses["OG-NET-01"] == "fail", run.summaries["OG-NET-01"]
        assert run.rc == 1
        # Defence in depth: the unit's IPAddressDeny= still drops the controller's connect.
        assert not host.port_open_from_host(LLAMACPP_PORT)
        # The nightly unit records the finding without turning "failed" (SuccessExitStatus=1 3).
        host.run("systemctl start offgrid-audit.service")
        assert (
            host.run("systemctl is-failed offgrid-audit.service", check=False).stdout.strip()
            != "failed"
        )
        latest = json.loads(host.run("cat /var/lib/offgrid/reports/latest.json").stdout)
        statuses = {control["id"]: control["status"] for control in latest["controls"]}
        assert statuses["OG-NET-01"] == "fail"
    finally:
        _restore_dropins(host)


def test_removing_only_override_conf_fails_og_cfg_01(host: Workstation) -> None:
    """The sandbox and egress drop-ins alone do not make the engine's settings drop-in."""
    host.run(f"rm {OVERRIDE} && systemctl daemon-reload")
    try:
        # Without override.conf the unit lacks its model path: the engine may not come up,
        # and the audit must name the missing drop-in either way.
        host.run(f"systemctl restart {LLAMACPP_UNIT}", check=False)
        run = audit(host)
        assert run.statuses["OG-CFG-01"] == "fail", run.summaries["OG-CFG-01"]
        assert "override.conf" in run.summaries["OG-CFG-01"]
    finally:
        _restore_dropins(host)


def test_removing_the_dropins_fails_og_cfg_01(host: Workstation) -> None:
    """The engine role's drop-ins go; the seal's (role offgrid_seal, when sealed) stays, so
    the engine still runs in its namespace and does not collide with the proxy's socket."""
    host.run(
        f"mv {DROPIN_DIR} /root/dropins.moved && mkdir {DROPIN_DIR} && "
        f"if [ -e /root/dropins.moved/{SEAL} ]; then cp -a /root/dropins.moved/{SEAL} "
        f"{DROPIN_DIR}/; fi"
    )
    try:
        restart_engine(host)
        run = audit(host)
        assert run.statuses["OG-CFG-01"] == "fail", run.summaries["OG-CFG-01"]
        # The sandbox and the unit's IP firewall went with them.
        assert run.statuses["OG-HRD-01"] == "fail"
    finally:
        host.run(f"rm -rf {DROPIN_DIR} && mv /root/dropins.moved {DROPIN_DIR}")
        _restore_dropins(host)


def test_an_unloaded_dropin_fails_og_cfg_01(host: Workstation) -> None:
    host.run(f"printf '[Service]\\nEnvironment=OFFGRID_LLAMACPP_PORT=8081\\n' > {TAMPER_DROPIN}")
    try:
        run = audit(host)  # no daemon-reload: what is on disk is not what runs
        assert run.statuses["OG-CFG-01"] == "fail", run.summaries["OG-CFG-01"]
    finally:
        _restore_dropins(host)


def test_verbose_flag_fails_og_cfg_04(host: Workstation) -> None:
    exec_start = host.run(
        f"sed -n 's/^ExecStart=//p' /etc/systemd/system/{LLAMACPP_UNIT}"
    ).stdout.strip()
    dropin = "[Service]\\nExecStart=\\nExecStart=%s --verbose true\\n"
    host.run(f"printf '{dropin}' '{exec_start}' > {TAMPER_DROPIN}")
    try:
        restart_engine(host)
        run = audit(host)
        assert run.statuses["OG-CFG-04"] == "fail", run.summaries["OG-CFG-04"]
    finally:
        _restore_dropins(host)


def test_each_egress_layer_enforces_on_its_own(host: Workstation) -> None:
    """Flush only the nft rule: the unit's IP firewall still stops the probe; drop only the
    unit's IP firewall: the nft rule still rejects it and counts."""
    try:
        host.run("nft flush table inet offgrid_egress")
        run = audit(host)
        assert run.statuses["OG-NET-04"] == "pass", run.summaries["OG-NET-04"]
        assert "enforcement verified" in run.summaries["OG-NET-04"]

        host.run(f"systemctl restart offgrid-egress.service && rm {EGRESS}")
        restart_engine(host)
        before = _counted(host)
        run = audit(host)
        assert run.statuses["OG-NET-04"] == "pass", run.summaries["OG-NET-04"]
        assert _counted(host) > before  # the rejected probe was counted
    finally:
        _restore_dropins(host)


def test_stopping_the_egress_lockdown_fails_og_net_04(host: Workstation) -> None:
    host.run(f"nft flush table inet offgrid_egress && rm {EGRESS}")
    try:
        restart_engine(host)
        run = audit(host)
        assert run.statuses["OG-NET-04"] == "fail", run.summaries["OG-NET-04"]
    finally:
        _restore_dropins(host)


def _counted(ws: Workstation) -> int:
    """The reject counter the engine's packets meet: the sealed namespace's own rule (the
    probe connects from the engine's namespace), else the host's per-user rule."""
    main = ws.run(f"systemctl show -p MainPID --value {LLAMACPP_UNIT}").stdout.strip()
    sealed = (
        ws.run(f"readlink /proc/{main}/ns/net").stdout != ws.run("readlink /proc/1/ns/net").stdout
    )
    if sealed:
        table = ws.run(f"nsenter --target={main} --net nft list table inet offgrid_seal").stdout
    else:
        table = ws.run("nft list table inet offgrid_egress").stdout
    return _packets(table)


def _packets(table: str) -> int:
    for line in table.splitlines():
        if "reject" in line and "counter packets" in line:
            return int(line.split("counter packets", 1)[1].split()[0])
    raise AssertionError(f"no counting reject rule in:\n{table}")

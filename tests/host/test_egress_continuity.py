"""The nightly unit on a workstation that records egress attempts (ulogd2 on NFLOG), night by night.

One machine of its own, provisioned by playbooks/site.yml from the test bundle plus ulogd2
and ulogd2-json (`offgrid bundle add-debs`, re-signed) with offgrid_egress_recording_enabled,
the engine unsealed (the host's recorder sees only the host's namespace; the sealed
namespace's own recorder is test_seal.py's).
Between two runs of offgrid-audit.service the engine's user makes 20 connection attempts of
about 20 ms each to the controller's end of the management veth (the only route there is;
the reject rule stops every packet before it leaves): the second night fails OG-NET-05 with
20 attempts listed, OG-NET-07 passes (continuous), and after a reload of the egress ruleset
the next night's OG-NET-07 says "recording restarted".
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.host.bundle import TestBundle, sign_test_bundle
from tests.host.inhost import probe_listener, provisioned_vars
from tests.host.workstation import SITE_PLAYBOOK, Workstation, booted

pytestmark = [pytest.mark.host, pytest.mark.root]

OFFGRID = Path(sys.executable).with_name("offgrid")
# ulogd2's dependencies reach perl, which needs the perl-base of the same Debian point
# release: the bundle carries it, as a staging box newer than the target's image would.
RECORDER_DEBS = ("ulogd2", "ulogd2-json", "perl-base")

ATTEMPTS = """\
import os, socket, sys, time
host = sys.argv[1]
for i in range(20):
    if os.fork() == 0:
        udp = i % 2
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as s:
            try:
                s.sendto(b"x", (host, 5300 + i)) if udp else s.connect((host, 4400 + i))
            except OSError:
                pass
            time.sleep(0.02)
        os._exit(0)
    os.wait()
"""


def _with_recorder(bundle: TestBundle, dest: Path) -> TestBundle:
    """The test bundle plus ulogd2 and ulogd2-json, signed by the same staging key."""
    shutil.copytree(bundle.path, dest, copy_function=os.link)
    done = subprocess.run(
        [str(OFFGRID), "bundle", "add-debs", str(dest), *RECORDER_DEBS],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    if done.returncode != 0 and "apt-get" in done.stderr:
        pytest.skip(f"add-debs cannot fetch ulogd2 here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stdout + done.stderr
    variant = dataclasses.replace(bundle, path=dest)
    sign_test_bundle(variant, bundle)
    return variant


@pytest.fixture(scope="module")
def recording(
    test_bundle: TestBundle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workstation]:
    bundle = _with_recorder(test_bundle, tmp_path_factory.mktemp("recording") / "bundle")
    with booted(f"ogr-{os.getpid()}") as ws:
        # The host's recorder, which sees the engine's user only in the host's namespace: the
        # unsealed layout. A sealed engine's packets meet its own namespace's rules and the
        # recorder inside it (test_seal.py).
        extra = {
            **provisioned_vars(ws, bundle),
            "offgrid_egress_recording_enabled": True,
            "offgrid_seal_enabled": False,
        }
        ws.playbook(SITE_PLAYBOOK, extra_vars=extra)
        yield ws


def _night(ws: Workstation) -> dict[str, Any]:
    """One run of the nightly unit (with the probe target listening); its report."""
    with probe_listener(ws):
        ws.run("systemctl start offgrid-audit.service", timeout=300)
    state = ws.run("systemctl is-failed offgrid-audit.service", check=False).stdout.strip()
    assert state != "failed", ws.run(
        "journalctl -u offgrid-audit.service -n 40", check=False
    ).stdout
    return json.loads(ws.run("cat /var/lib/offgrid/reports/latest.json").stdout)


def _control(report: dict[str, Any], cid: str) -> dict[str, Any]:
    return next(c for c in report["controls"] if c["id"] == cid)


def test_the_nightly_unit_reports_attempts_since_the_last_night_and_a_reload(
    recording: Workstation,
) -> None:
    ws = recording
    first = _night(ws)
    assert _control(first, "OG-NET-07")["status"] == "not_applicable"
    assert _control(first, "OG-NET-07")["summary"].startswith("first night")
    assert _control(first, "OG-NET-05")["status"] == "pass", _control(first, "OG-NET-05")
    assert _control(first, "OG-NET-04")["status"] == "pass", _control(first, "OG-NET-04")
    ws.run(
        "setpriv --reuid=llamacpp --regid=llamacpp --clear-groups "
        f"/usr/bin/python3 -c '{ATTEMPTS}' {ws.host_ip}",
        timeout=120,
    )
    second = _night(ws)
    net05 = _control(second, "OG-NET-05")
    assert net05["status"] == "fail" and net05["summary"].startswith("20 egress attempt(s)"), net05
    listed = [e["value"] for e in net05["evidence"] if e["label"] == "attempt"]
    assert len(listed) == 20 and all(ws.host_ip in line for line in listed), listed
    assert all(line[:4].isdigit() for line in listed), listed  # each with its kernel time
    assert _control(second, "OG-NET-07")["status"] == "pass", _control(second, "OG-NET-07")
    (delta,) = second["extra"]["egress_recording"]
    assert delta["since_entry"] is not None and delta["probe"]["started_at"], delta
    ws.run("systemctl restart offgrid-egress.service")  # reloads the ruleset
    third = _night(ws)
    net07 = _control(third, "OG-NET-07")
    assert net07["status"] == "fail" and net07["summary"].startswith("recording restarted"), net07
    assert "ruleset was reloaded" in net07["summary"], net07
    assert _control(third, "OG-NET-05")["status"] == "pass", _control(third, "OG-NET-05")

"""The `ollama` engine path of playbooks/site.yml on a booted offline workstation of its own.

The engine is the Ollama release STAND-IN (tests/standins/ollama_release_standin.py: the real
layout and file names, an Ollama-protocol stand-in server inside), installed by the real
offgrid_ollama role. The tests run in file order on one machine: a refused tarball first (on
the untouched machine), then the install, what it left, idempotence, the in-host audit, and
the upgrades last.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.host.bundle import TestBundle, build_test_bundle, site_vars
from tests.host.inhost import engine_listeners, probe_listener
from tests.host.workstation import SITE_PLAYBOOK, PlaybookRun, Workstation, booted
from tests.standins import ollama_release_standin
from tests.standins.ollama_release_standin import StandinRelease

pytestmark = [pytest.mark.host, pytest.mark.root]

PORT = 11434
DROPIN = "/etc/systemd/system/ollama.service.d/override.conf"
ARCHIVE = ollama_release_standin.ARCHIVE_NAMES["zst"]
EXPECTED_ENV = {
    "OLLAMA_HOST": f"127.0.0.1:{PORT}",
    "OLLAMA_NO_CLOUD": "1",
    "OLLAMA_NOPRUNE": "1",
    "OLLAMA_MODELS": "/usr/share/ollama/.ollama/models",
    "OLLAMA_KEEP_ALIVE": "5m",
}
# Everything a refused play must leave untouched: the whole root file system except kernel
# and runtime file systems, logs, and Ansible's own scratch directory.
_CHANGED_SINCE_MARKER = (
    "find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp"
    " -o -path /var/tmp -o -path /var/log -o -path /root/.ansible \\) -prune"
    " -o -newer /run/offgrid-test-marker -print"
)
# A test-only release whose binary reports its version but cannot serve: an upgrade to it
# must be rolled back by the role's health check.
_BROKEN_SERVER = (
    "import os, sys\n"
    "# offgrid TEST STAND-IN that cannot serve: exercises the role's rollback.\n"
    "if sys.argv[1:2] == ['--version']:\n"
    "    print('ollama version is ' + os.environ['OFFGRID_STANDIN_VERSION'])\n"
    "    sys.exit(0)\n"
    "sys.exit(1)\n"
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> TestBundle:
    return build_test_bundle(tmp_path_factory.mktemp("ollama-bundle"), engine="ollama")


@pytest.fixture(scope="module")
def machine() -> Iterator[Workstation]:
    with booted(f"ogo-{os.getpid()}") as ws:
        yield ws


@pytest.fixture(scope="module")
def installed(machine: Workstation, bundle: TestBundle) -> PlaybookRun:
    """site.yml with offgrid_engine=ollama, run once for the module."""
    return machine.playbook(SITE_PLAYBOOK, extra_vars=site_vars(bundle, "ollama"))


def _main_pid(ws: Workstation) -> int:
    pid = int(ws.run("systemctl show -p MainPID --value ollama.service").stdout.strip())
    assert pid > 0
    return pid


def _environ(ws: Workstation, pid: int) -> dict[str, str]:
    raw = ws.run(f"tr '\\0' '\\n' < /proc/{pid}/environ").stdout
    return dict(line.split("=", 1) for line in raw.splitlines() if "=" in line)


def _api_version(ws: Workstation) -> str:
    url = f"http://127.0.0.1:{PORT}/api/version"
    reply = ws.run(
        f"python3 -c \"import urllib.request as u; print(u.urlopen('{url}').read().decode())\""
    )
    return str(json.loads(reply.stdout)["version"])


def _active_version(ws: Workstation) -> str:
    return ws.run("readlink /opt/ollama/current").stdout.strip().rsplit("/", 1)[-1]


def _upgrade_vars(bundle: TestBundle, release: StandinRelease) -> dict[str, object]:
    return {
        **site_vars(bundle, "ollama"),
        "offgrid_ollama_version": release.version,
        "offgrid_ollama_sha256": release.sha256,
        "offgrid_ollama_start_timeout": 10,
    }


def _run_and_list_changes(
    machine: Workstation, playbook: Path, extra_vars: dict[str, object], **options: bool
) -> tuple[PlaybookRun, list[str]]:
    """Run a play; return it with the paths it created or modified on the machine."""
    # Ansible's scratch directory exists before the marker, so only the play's doing counts.
    machine.run("mkdir -p /root/.ansible/tmp && touch /run/offgrid-test-marker && sleep 1")
    run = machine.playbook(playbook, extra_vars=extra_vars, **options)
    return run, machine.run(_CHANGED_SINCE_MARKER).stdout.split()


def test_check_mode_on_the_fresh_machine_changes_nothing(
    machine: Workstation, bundle: TestBundle, tmp_path: Path
) -> None:
    play = tmp_path / "engine.yml"
    play.write_text(
        "- name: GPU and Ollama roles in check mode\n  hosts: workstations\n"
        "  gather_facts: false\n  roles:\n    - offgrid_gpu\n    - offgrid_ollama\n"
    )
    run, changed = _run_and_list_changes(
        machine, play, site_vars(bundle, "ollama"), check_mode=True
    )
    assert changed == []
    assert run.stats[machine.name].changed > 0  # it did report what it would do


def test_wrong_sha256_fails_the_play_before_anything_on_the_target_changes(
    machine: Workstation, bundle: TestBundle
) -> None:
    wrong = {**site_vars(bundle, "ollama"), "offgrid_ollama_sha256": "0" * 64}
    run, changed = _run_and_list_changes(machine, SITE_PLAYBOOK, wrong, expect_failure=True)
    assert f"does not match the pinned {'0' * 64}" in run.output
    assert changed == []
    assert machine.run("getent passwd ollama", check=False).returncode == 2


def test_corrupted_tarball_fails_the_play_before_anything_on_the_target_changes(
    machine: Workstation, bundle: TestBundle
) -> None:
    tarball = bundle.path / "engines/ollama" / str(bundle.ollama_version) / ARCHIVE
    original = tarball.read_bytes()
    corrupted = bytearray(original)
    corrupted[len(corrupted) // 2] ^= 0xFF  # one flipped byte in the middle of the archive
    tarball.write_bytes(bytes(corrupted))
    try:
        run, changed = _run_and_list_changes(
            machine, SITE_PLAYBOOK, site_vars(bundle, "ollama"), expect_failure=True
        )
    finally:
        tarball.write_bytes(original)
    assert f"does not match the pinned {bundle.ollama_sha256}" in run.output
    assert changed == []


def test_service_user_is_made_like_ollamas_installer(
    machine: Workstation, installed: PlaybookRun
) -> None:
    host = machine.testinfra_host()
    user = host.user("ollama")
    assert (user.shell, user.home, user.group) == ("/bin/false", "/usr/share/ollama", "ollama")
    assert user.uid < 1000  # a system account
    device_groups = {g for g in ("render", "video") if host.group(g).exists}
    assert set(user.groups) == {"ollama", *device_groups}
    for path in ("/usr/share/ollama", "/usr/share/ollama/.ollama"):
        home = host.file(path)
        assert (home.user, home.mode) == ("ollama", 0o750)


def test_unit_and_dropin(machine: Workstation, installed: PlaybookRun) -> None:
    host = machine.testinfra_host()
    unit = host.file("/etc/systemd/system/ollama.service").content_string
    assert "ExecStart=/usr/local/bin/ollama serve" in unit
    assert "User=ollama" in unit and "Group=ollama" in unit and "Restart=always" in unit
    dropin = host.file(DROPIN)
    assert (dropin.user, dropin.mode) == ("root", 0o644)
    for name, value in EXPECTED_ENV.items():
        assert f'Environment="{name}={value}"' in dropin.content_string
    assert "Ansible managed" in dropin.content_string
    effective = machine.run("systemctl show -p Environment --value ollama.service").stdout
    for name, value in EXPECTED_ENV.items():
        assert f"{name}={value}" in effective
    # The seed's OLLAMA_NO_AUTO_UPDATE does not exist in Ollama; nothing may pretend it does.
    assert machine.run("grep -rl OLLAMA_NO_AUTO_UPDATE /etc/systemd", check=False).stdout == ""
    service = host.service("ollama")
    assert service.is_enabled and service.is_running


def test_server_json_disables_cloud(machine: Workstation, installed: PlaybookRun) -> None:
    config = machine.testinfra_host().file("/usr/share/ollama/.ollama/server.json")
    assert json.loads(config.content_string) == {"disable_ollama_cloud": True}
    assert (config.user, config.group, config.mode) == ("root", "ollama", 0o640)


def test_running_process_received_the_environment(
    machine: Workstation, bundle: TestBundle, installed: PlaybookRun
) -> None:
    pid = _main_pid(machine)
    environ = _environ(machine, pid)
    for name, value in EXPECTED_ENV.items():
        assert environ.get(name) == value, name
    assert environ["HOME"] == "/usr/share/ollama"
    assert machine.run(f"stat -c %U /proc/{pid}").stdout.strip() == "ollama"
    assert _api_version(machine) == bundle.ollama_version


def test_listens_on_loopback_only(machine: Workstation, installed: PlaybookRun) -> None:
    # the host side (the engine, or the sealed engine's proxy held by systemd) and the
    # engine's own listener in its network namespace (the host's unless sealed): loopback only
    listeners = machine.run(f"ss -Htln 'sport = :{PORT}'").stdout.split("\n")
    local = {line.split()[3] for line in listeners if line.strip()}
    assert local == {f"127.0.0.1:{PORT}"}
    assert engine_listeners(machine, "ollama.service", PORT) == [f"127.0.0.1:{PORT}"]
    # Scanned from the controller's side of the management link: closed. SSH proves the scan
    # can see an open port.
    assert not machine.port_open_from_host(PORT)
    assert machine.port_open_from_host(22)


def test_second_run_changes_nothing(
    machine: Workstation, bundle: TestBundle, installed: PlaybookRun
) -> None:
    run = machine.playbook(SITE_PLAYBOOK, extra_vars=site_vars(bundle, "ollama"))
    changed_lines = [line for line in run.output.splitlines() if line.startswith("changed:")]
    assert run.stats[machine.name].changed == 0, (run.changed_tasks(), changed_lines)


def _audit(machine: Workstation, *flags: str) -> tuple[int, dict[str, Any]]:
    # the role's default probe address leads nowhere (OG-NET-04 unverified: error); prove it
    with probe_listener(machine) as target:
        command = " ".join(
            ("offgrid audit --engine ollama --format json", f"--egress-probe {target}", *flags)
        )
        result = machine.run(command, check=False, timeout=300)
    return result.returncode, json.loads(result.stdout)


def _statuses(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["id"]: (c["status"], c["summary"]) for c in report["controls"]}


def _fingerprint(public_key: Path) -> str:
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(public_key)], capture_output=True, text=True, check=True
    )
    return listed.stdout.split()[1]


def test_in_host_audit_passes_every_control(
    machine: Workstation, bundle: TestBundle, installed: PlaybookRun
) -> None:
    code, report = _audit(machine)
    statuses = _statuses(report)
    for cid in ("OG-NET-01", "OG-CFG-01", "OG-CFG-02", "OG-CFG-03", "OG-INT-01", "OG-AGT-01"):
        assert statuses[cid][0] == "pass", (cid, statuses[cid])
    # OG-TEL-* need IDE users, which this workstation has none of.
    failing = {cid: s for cid, s in statuses.items() if s[0] not in ("pass", "not_applicable")}
    assert failing == {}
    assert code == 0, statuses
    # the report names the staging key that signed the bundle this workstation runs
    signature = report["integrity"]["signature"]
    key = bundle.path.parent / f"{bundle.path.name}.signing-key.pub"
    assert (signature["status"], signature["principal"]) == ("verified", "staging@offgrid")
    assert signature["fingerprint"] == _fingerprint(key)
    assert signature["allowed_signers"] == "/etc/offgrid/allowed_signers"


def test_agent_switches_reach_the_service_and_every_login_user(
    machine: Workstation, installed: PlaybookRun
) -> None:
    env = _environ(machine, _main_pid(machine))
    assert env["OLLAMA_AGENT_DISABLE_SHELL"] and env["OLLAMA_AGENT_DISABLE_WEBSEARCH"]
    shown = "echo $OLLAMA_AGENT_DISABLE_SHELL:$OLLAMA_AGENT_DISABLE_WEBSEARCH"
    login = machine.run(f"su -l nobody -s /bin/sh -c '{shown}'")
    assert login.stdout.strip() == "1:1"  # /etc/profile.d/offgrid-ollama-agent.sh


def test_a_developer_who_clears_the_web_tool_switch_fails_og_agt_01(
    machine: Workstation, installed: PlaybookRun
) -> None:
    """Planted fault: a developer's ~/.profile empties OLLAMA_AGENT_DISABLE_WEBSEARCH after
    the system-wide file set it, so the agent's WebSearch/WebFetch tools come back."""
    user = "offgrid-dev"
    machine.run(f"userdel -r {user} >/dev/null 2>&1 || true; useradd -m -s /bin/bash {user}")
    try:
        code, report = _audit(machine, f"--cli-user {user}")
        assert _statuses(report)["OG-AGT-01"][0] == "pass", _statuses(report)["OG-AGT-01"]
        machine.run(
            f"su {user} -s /bin/sh -c 'echo export OLLAMA_AGENT_DISABLE_WEBSEARCH= >> ~/.profile'"
        )
        code, report = _audit(machine, f"--cli-user {user}")
        status, summary = _statuses(report)["OG-AGT-01"]
        assert (status, code) == ("fail", 1), summary
        assert f"{user}: OLLAMA_AGENT_DISABLE_WEBSEARCH is not set in any login file" in summary
    finally:
        machine.run(f"userdel -r {user}", check=False)


def test_upgrade_that_fails_its_version_check_keeps_the_old_one(
    machine: Workstation, bundle: TestBundle, installed: PlaybookRun
) -> None:
    before = _active_version(machine)
    pid = _main_pid(machine)
    # Packed as 0.17.8 but its binary says 0.17.7: refused before the switch.
    liar = ollama_release_standin.build_release(bundle.path / "engines/ollama/0.17.8", "0.17.7")
    liar = StandinRelease(liar.path, "0.17.8", liar.sha256)
    machine.playbook(SITE_PLAYBOOK, extra_vars=_upgrade_vars(bundle, liar), expect_failure=True)
    assert _active_version(machine) == before
    assert _main_pid(machine) == pid  # never restarted
    assert _api_version(machine) == before


def test_upgrade_switches_after_the_new_version_verifies(
    machine: Workstation, bundle: TestBundle, installed: PlaybookRun
) -> None:
    before = _active_version(machine)
    release = ollama_release_standin.build_into_bundle(bundle.path, "0.17.2")
    run = machine.playbook(SITE_PLAYBOOK, extra_vars=_upgrade_vars(bundle, release))
    assert any("Switch the active version" in name for name in run.changed_tasks())
    assert _active_version(machine) == "0.17.2"
    assert _api_version(machine) == "0.17.2"
    assert machine.run(f"test -x /opt/ollama/{before}/bin/ollama", check=False).returncode == 0
    assert _environ(machine, _main_pid(machine))["OLLAMA_HOST"] == f"127.0.0.1:{PORT}"


def test_upgrade_that_cannot_serve_is_rolled_back(
    machine: Workstation, bundle: TestBundle, installed: PlaybookRun, tmp_path: Path
) -> None:
    before = _active_version(machine)
    broken_server = tmp_path / "broken_standin.py"
    broken_server.write_text(_BROKEN_SERVER)
    broken = ollama_release_standin.build_into_bundle(bundle.path, "0.17.9", server=broken_server)
    run = machine.playbook(
        SITE_PLAYBOOK, extra_vars=_upgrade_vars(bundle, broken), expect_failure=True
    )
    assert f"Rolled back to /opt/ollama/{before}" in run.output
    assert _active_version(machine) == before
    assert _api_version(machine) == before

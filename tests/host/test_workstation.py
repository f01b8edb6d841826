"""The harness itself: the workstation is booted, air-gapped and enforces unit IP firewalling."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from tests.host.workstation import Workstation, booted

pytestmark = [pytest.mark.host, pytest.mark.root]


def test_boots_systemd_and_answers_ssh(workstation: Workstation) -> None:
    assert workstation.run("systemctl is-system-running").stdout.strip() == "running"
    assert workstation.run("hostname").stdout.strip() == workstation.name
    assert workstation.port_open_from_host(22)
    assert not workstation.port_open_from_host(9)


def test_only_route_is_the_management_link(workstation: Workstation) -> None:
    routes = workstation.run("ip -4 route show").stdout.strip().splitlines()
    assert len(routes) == 1, routes
    assert "default" not in routes[0] and "dev mgmt0" in routes[0]


def test_ansible_reaches_it_with_the_generated_inventory(
    workstation: Workstation, tmp_path: Path
) -> None:
    playbook = tmp_path / "ping.yml"
    playbook.write_text(
        "- name: Reach the workstation\n  hosts: workstations\n  gather_facts: false\n"
        "  tasks:\n    - name: Ping\n      ansible.builtin.ping:\n"
    )
    run = workstation.playbook(playbook)
    assert run.stats[workstation.name].ok == 1
    assert run.stats[workstation.name].failed == 0


def _listen(address: str) -> tuple[socket.socket, list[str]]:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((address, 0))
    server.listen()
    server.settimeout(10)
    seen: list[str] = []

    def accept() -> None:
        try:
            while True:
                conn, peer = server.accept()
                seen.append(peer[0])
                conn.close()
        except OSError:
            return

    threading.Thread(target=accept, daemon=True).start()
    return server, seen


def test_unit_ip_firewalling_is_enforced(workstation: Workstation) -> None:
    """IPAddressDeny= must really drop packets, or OG-NET-04 proves nothing: a default nspawn
    boot (cgroup v1, no bpf()) reports the setting while packets leave."""
    server, seen = _listen(workstation.host_ip)
    port = server.getsockname()[1]
    probe = (
        "python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(3); "
        f'sys.exit(s.connect_ex(("{workstation.host_ip}", {port})))\''
    )
    try:
        plain = workstation.run(probe, check=False)
        denied = workstation.run(
            f"systemd-run --wait --quiet -p IPAddressDeny=any -p IPAddressAllow=localhost {probe}",
            check=False,
        )
    finally:
        server.close()
    assert plain.returncode == 0
    assert denied.returncode != 0
    assert seen == [workstation.guest_ip]  # exactly one connection: the unconfined probe


def test_shutdown_removes_everything() -> None:
    with booted(f"ogt-cleanup-{os.getpid()}") as ws:  # unique: sessions may run side by side
        root, netns, veth, machine_dir = ws.root, ws.netns, ws.host_veth, ws.machine_dir
        assert root.joinpath("etc/os-release").is_file()
    assert (
        netns
        not in subprocess.run(
            ["ip", "netns", "list"], check=False, capture_output=True, text=True
        ).stdout
    )
    assert (
        subprocess.run(["ip", "link", "show", veth], check=False, capture_output=True).returncode
        != 0
    )
    assert not machine_dir.exists()
    nspawns = subprocess.run(
        ["pgrep", "-f", f"systemd-nspawn.*{machine_dir}"],
        check=False,
        capture_output=True,
        text=True,
    ).stdout
    assert nspawns == ""

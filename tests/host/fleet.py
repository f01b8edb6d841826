"""Several booted workstations in one inventory: the fleet playbooks/audit.yml runs against.

Provisioning site.yml costs minutes of CPU per machine, so a fleet is one provisioned machine
and clones of its root: each clone boots its own copy (its own machine-id, hostname, SSH key,
veth and namespace) of the same installed engine, auditor and units, and runs that auditor
itself. What differs per host is the egress probe target on its own controller link: the
clone's copy of the seed's address is replaced in the files that name it (repoint_probe), and
every history starts empty, so each host's history is its own auditor's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.host import log
from tests.host.workstation import (
    SSH_OPTIONS,
    PlaybookRun,
    Workstation,
    booted,
    close_ssh_masters,
    run_playbook,
)

# The files provisioning writes the egress probe target (the controller's end of the veth) to.
PROBE_FILES = ("/etc/offgrid/offgrid.toml", "/etc/systemd/system/offgrid-audit.service")


@dataclass
class Fleet:
    machines: tuple[Workstation, ...]
    directory: Path  # the inventory, extra-vars files and ansible's sockets
    inventory: Path
    runs: list[PlaybookRun] = field(default_factory=list)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(ws.name for ws in self.machines)

    def playbook(
        self,
        playbook: Path,
        extra_vars: Mapping[str, object] | None = None,
        limit: tuple[Workstation, ...] | None = None,
        expect_failure: bool = False,
    ) -> PlaybookRun:
        """ansible-playbook on the whole fleet, or on the machines in `limit` only (an
        inventory of their own, so `ansible_play_hosts` is exactly them)."""
        inventory = self.inventory
        if limit is not None:
            inventory = self.directory / f"inventory-{'-'.join(ws.name for ws in limit)}.ini"
            inventory.write_text(render_inventory(limit))
        run = run_playbook(
            inventory, playbook, self.directory, extra_vars, expect_failure=expect_failure
        )
        self.runs.append(run)
        return run


def render_inventory(machines: tuple[Workstation, ...]) -> str:
    """One inventory for every machine: each with its own address and key, all in
    cpu_workstations (a child of workstations), as render_inventory does for one."""
    ssh_args = " ".join(SSH_OPTIONS)
    lines = ["# Written by tests/host/fleet.py for a fleet of booted test workstations."]
    lines.append("[cpu_workstations]")
    for ws in machines:
        lines.append(
            f"{ws.name} ansible_host={ws.guest_ip} ansible_ssh_private_key_file={ws.ssh_key}"
        )
    lines += ["", "[workstations:children]", "cpu_workstations", "", "[workstations:vars]"]
    lines += ["ansible_user=root", "ansible_python_interpreter=/usr/bin/python3"]
    lines.append(f"ansible_ssh_common_args='{ssh_args}'")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def fleet_of(machines: tuple[Workstation, ...], directory: Path) -> Iterator[Fleet]:
    """The machines as one fleet; afterwards ansible's SSH masters to them are closed."""
    directory.mkdir(parents=True, exist_ok=True)
    inventory = directory / "inventory.ini"
    inventory.write_text(render_inventory(machines))
    try:
        yield Fleet(machines, directory, inventory)
    finally:
        for ws in machines:
            close_ssh_masters([], directory / "ansible-cp", ws.guest_ip)


def boot_clones(
    seed: Workstation, names: list[str], stack: contextlib.ExitStack
) -> tuple[Workstation, ...]:
    """Boot a clone of the seed's root per name, one after another (each copy is a disk
    copy, each boot starts the seed's engine: at once they would only compete for the CPU).
    Every clone is shut down when `stack` closes, also when a later one fails to boot."""
    seed.run("sync")
    clones = []
    for name in names:
        ws = stack.enter_context(booted(name, template=seed.root))
        log.info(f"{name}: a clone of {seed.name}, booted in {ws.boot_seconds:.1f} s")
        clones.append(ws)
    return tuple(clones)


def repoint_probe(clone: Workstation, seed: Workstation) -> None:
    """Aim the clone's egress probe at its own controller link instead of the seed's; fails
    if the seed's address is anywhere else in the clone's settings (the clone would not be
    the seed's twin)."""
    found = clone.run(f"grep -rlwF {seed.host_ip} /etc /usr/local || true").stdout.split()
    assert sorted(found) == sorted(PROBE_FILES), f"{seed.host_ip} is named in {found}"
    old, new = seed.host_ip.replace(".", "\\."), clone.host_ip
    clone.run(f"sed -i 's/{old}\\b/{new}/g' {' '.join(PROBE_FILES)} && systemctl daemon-reload")

"""Several booted workstations in one inventory: the fleet playbooks/audit.yml runs against.

Provisioning site.yml costs minutes of CPU per machine, so a fleet is clones of one
provisioned machine's root: each clone boots its own copy (its own machine-id, hostname, SSH
key, veth and namespace) of the same installed engine, auditor and units, and runs that
auditor itself. What differs per host (the egress probe target on its own controller link)
comes from a host variable when a role is applied to the fleet (`render_inventory`), and
`assert_not_named` proves no clone still names the seed's address.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.host import log
from tests.host.workstation import (
    SSH_OPTIONS,
    PlaybookRun,
    Workstation,
    boot,
    close_ssh_masters,
    run_playbook,
    shutdown,
)


@dataclass
class Fleet:
    machines: tuple[Workstation, ...]
    directory: Path  # the inventory, extra-vars files and ansible's sockets
    inventory: Path
    host_vars: Mapping[str, Mapping[str, str]]
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
            inventory.write_text(render_inventory(limit, self.host_vars))
        run = run_playbook(
            inventory, playbook, self.directory, extra_vars, expect_failure=expect_failure
        )
        self.runs.append(run)
        return run


def render_inventory(
    machines: tuple[Workstation, ...], host_vars: Mapping[str, Mapping[str, str]] | None = None
) -> str:
    """One inventory for every machine: each with its own address, key and `host_vars`
    (by machine name), all in cpu_workstations (a child of workstations), as
    workstation.render_inventory does for one."""
    ssh_args = " ".join(SSH_OPTIONS)
    lines = ["# Written by tests/host/fleet.py for a fleet of booted test workstations."]
    lines.append("[cpu_workstations]")
    for ws in machines:
        own = (host_vars or {}).get(ws.name, {})
        extra = "".join(f" {key}={value}" for key, value in own.items())
        lines.append(
            f"{ws.name} ansible_host={ws.guest_ip} ansible_ssh_private_key_file={ws.ssh_key}{extra}"
        )
    lines += ["", "[workstations:children]", "cpu_workstations", "", "[workstations:vars]"]
    lines += ["ansible_user=root", "ansible_python_interpreter=/usr/bin/python3"]
    lines.append(f"ansible_ssh_common_args='{ssh_args}'")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def fleet_of(
    machines: tuple[Workstation, ...],
    directory: Path,
    host_vars: Mapping[str, Mapping[str, str]] | None = None,
) -> Iterator[Fleet]:
    """The machines as one fleet; afterwards ansible's SSH masters to them are closed."""
    directory.mkdir(parents=True, exist_ok=True)
    inventory = directory / "inventory.ini"
    inventory.write_text(render_inventory(machines, host_vars))
    try:
        yield Fleet(machines, directory, inventory, host_vars or {})
    finally:
        for ws in machines:
            close_ssh_masters([], directory / "ansible-cp", ws.guest_ip)


def boot_clones(
    seed: Workstation, names: list[str], stack: contextlib.ExitStack
) -> tuple[Workstation, ...]:
    """Boot a clone of the seed's root per name, one after another (each copy is a disk
    copy, each boot starts the seed's engine: at once they would only compete for the CPU).
    When `stack` closes, every clone booted so far is shut down, in parallel (each waits
    for its own orderly poweroff), also when a later one failed to boot."""
    seed.run("sync")
    clones: list[Workstation] = []
    stack.callback(shutdown_all, clones)
    for name in names:
        ws = boot(name, template=seed.root)
        clones.append(ws)
        log.info(f"{name}: a clone of {seed.name}, booted in {ws.boot_seconds:.1f} s")
    return tuple(clones)


def shutdown_all(machines: list[Workstation]) -> None:
    """Shut every machine down at once; raises the first failure after all were tried."""
    with ThreadPoolExecutor(max_workers=max(1, len(machines))) as pool:
        outcomes = list(pool.map(_shutdown_quietly, machines))
    failures = [error for error in outcomes if error is not None]
    if failures:
        raise failures[0]


def _shutdown_quietly(ws: Workstation) -> BaseException | None:
    try:
        shutdown(ws)
    except Exception as exc:  # reported once every machine was tried
        return exc
    return None


def assert_not_named(clone: Workstation, address: str) -> None:
    """The clone's settings and units no longer name `address` (the seed's controller link)."""
    found = clone.run(f"grep -rlwF {address} /etc /usr/local || true").stdout.split()
    assert found == [], f"{clone.name} still names {address} in {found}"

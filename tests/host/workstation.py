"""A real offline workstation for tests: Debian 12 booted with systemd-nspawn.

The machine runs systemd as PID 1 in a private network namespace whose only link is a
management veth to the controller (SSH, key auth). It has no route anywhere else: the
same situation as a user's air-gapped workstation. See tests/host/README.md for the API.

    python -m tests.host.workstation up [--provision] [--engine llamacpp|ollama]
    python -m tests.host.workstation down
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.host import log, machine, network, rootfs

REPO = Path(__file__).resolve().parents[2]
SITE_PLAYBOOK = REPO / "playbooks" / "site.yml"
WORK_ROOT = Path(os.environ.get("OFFGRID_WORKSTATION_DIR", "/var/tmp/offgrid-workstations"))
CLI_NAME = "offgrid-dev"
SSH_OPTIONS = (
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "BatchMode=yes",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "ConnectTimeout=5",
)
_RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+"
    r"rescued=(?P<rescued>\d+)\s+ignored=(?P<ignored>\d+)",
    re.MULTILINE,
)
_TASK_HEADER = re.compile(r"^TASK \[(?P<name>.*)\] \*+$")


@dataclass(frozen=True)
class HostStats:
    ok: int
    changed: int
    unreachable: int
    failed: int
    skipped: int
    rescued: int
    ignored: int


@dataclass(frozen=True)
class PlaybookRun:
    rc: int
    output: str
    stats: dict[str, HostStats]
    duration_s: float

    def changed_tasks(self) -> list[str]:
        """Names of the tasks that reported `changed` (what broke idempotence)."""
        names, current = [], ""
        for line in self.output.splitlines():
            header = _TASK_HEADER.match(line)
            if header:
                current = header.group("name")
            elif line.startswith("changed: [") and current not in names:
                names.append(current)
        return names


@dataclass
class Workstation:
    name: str
    root: Path
    netns: str
    host_ip: str
    guest_ip: str
    ssh_key: Path
    inventory: Path
    machine_dir: Path
    host_veth: str
    nspawn_pid: int
    boot_seconds: float = 0.0
    runs: list[PlaybookRun] = field(default_factory=list)
    provisioning: PlaybookRun | None = None  # the site.yml run of the `provisioned` fixture

    # -- commands on the guest ------------------------------------------------------------
    def ssh_command(self, *extra: str) -> list[str]:
        return [
            "ssh",
            *SSH_OPTIONS,
            "-i",
            str(self.ssh_key),
            "-o",
            "ControlMaster=auto",
            "-o",
            f"ControlPath={self.machine_dir}/ssh-control",
            "-o",
            "ControlPersist=60",
            *extra,
            f"root@{self.guest_ip}",
        ]

    def run(
        self, cmd: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command on the workstation as root over SSH."""
        result = subprocess.run(
            [*self.ssh_command(), "--", cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"on {self.name}: {cmd!r} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def copy_to(self, local: Path, remote: str) -> None:
        subprocess.run(
            [
                "scp",
                *SSH_OPTIONS,
                "-i",
                str(self.ssh_key),
                "-q",
                "-r",
                str(local),
                f"root@{self.guest_ip}:{remote}",
            ],
            check=True,
            capture_output=True,
            text=True,
        )

    def playbook(
        self,
        playbook: Path,
        extra_vars: Mapping[str, object] | None = None,
        check_mode: bool = False,
        expect_failure: bool = False,
    ) -> PlaybookRun:
        """Run ansible-playbook against this workstation's inventory from the repository."""
        run = run_playbook(
            self.inventory,
            playbook,
            self.machine_dir,
            extra_vars,
            check_mode=check_mode,
            expect_failure=expect_failure,
        )
        self.runs.append(run)
        return run

    def testinfra_host(self) -> Any:
        """A testinfra host over SSH with the session key (testinfra ships no type hints)."""
        import testinfra  # noqa: PLC0415  (only the host tests need it)

        return testinfra.get_host(
            f"ssh://root@{self.guest_ip}",
            ssh_identity_file=str(self.ssh_key),
            ssh_extra_args=" ".join(SSH_OPTIONS),
            # The same master as run(): shutdown() closes it instead of leaving it for 60 s.
            controlpath=str(self.machine_dir / "ssh-control"),
        )

    def port_open_from_host(self, port: int) -> bool:
        """Whether a TCP connect from the controller's side to guest_ip:port succeeds."""
        try:
            with socket.create_connection((self.guest_ip, port), timeout=3):
                return True
        except OSError:
            return False

    def ssh_hint(self) -> str:
        return f"ssh -i {self.ssh_key} -o StrictHostKeyChecking=no root@{self.guest_ip}"


def ansible_env(work_dir: Path) -> dict[str, str]:
    """ansible-playbook's environment: no colour, no retry files, sockets under work_dir."""
    return {
        **os.environ,
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(work_dir / "ansible-cp"),
        "ANSIBLE_LOCAL_TEMP": str(work_dir / "ansible-tmp"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }


def run_playbook(
    inventory: Path,
    playbook: Path,
    work_dir: Path,
    extra_vars: Mapping[str, object] | None = None,
    *,
    check_mode: bool = False,
    expect_failure: bool = False,
) -> PlaybookRun:
    """ansible-playbook from the repository root (so ansible.cfg applies) on `inventory`;
    rc != 0 raises unless expect_failure (and vice versa)."""
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory)]
    command.append(str(playbook))
    if extra_vars:
        number = len(list(work_dir.glob("extra-vars-*.json")))
        vars_file = work_dir / f"extra-vars-{number}.json"
        vars_file.write_text(json.dumps(extra_vars, indent=2, default=str))
        command += ["-e", f"@{vars_file}"]
    if check_mode:
        command.append("--check")
    started = time.monotonic()
    result = subprocess.run(
        command,
        cwd=REPO,
        env=ansible_env(work_dir),
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    output = result.stdout + result.stderr
    run = PlaybookRun(result.returncode, output, parse_recap(output), time.monotonic() - started)
    if expect_failure and run.rc == 0:
        raise AssertionError(f"{playbook.name} was expected to fail but passed:\n{output}")
    if not expect_failure and run.rc != 0:
        raise AssertionError(f"{playbook.name} failed (rc={run.rc}):\n{output}")
    return run


def parse_recap(output: str) -> dict[str, HostStats]:
    stats = {}
    for match in _RECAP.finditer(output):
        counts = {key: int(value) for key, value in match.groupdict().items() if key != "host"}
        stats[match.group("host")] = HostStats(**counts)
    return stats


# -- lifecycle -------------------------------------------------------------------------------
def missing_prerequisites() -> str | None:
    """Why the workstation cannot boot here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, systemd-nspawn)"
    for tool in ("systemd-nspawn", "debootstrap", "ssh", "ssh-keygen", "ip", "zstd"):
        if shutil.which(tool) is None:
            return f"needs {tool} (make apt)"
    return None


def boot(name: str, persistent: bool = False, template: Path | None = None) -> Workstation:
    """Boot a fresh copy of the cached rootfs (or of `template`, another machine's root: a
    clone of what was provisioned there); raises with the console log if it fails.

    A test session's machine belongs to its process: once that process is gone, the next
    boot anywhere removes it. A persistent one (the CLI's) stays until `down`.
    """
    reason = missing_prerequisites()
    if reason:
        raise RuntimeError(f"cannot boot the workstation: {reason}")
    tarball = rootfs.ensure_tarball() if template is None else None
    _clean_leftovers(name)
    rootfs.ensure_nspawn_runtime_dir()
    machine_dir = WORK_ROOT / name
    machine_dir.mkdir(parents=True, mode=0o700)
    owner = None if persistent else os.getpid()
    _write_state(machine_dir, {"name": name, "owner_pid": owner})
    root = machine_dir / "root"
    if tarball is not None:
        rootfs.unpack(tarball, root)
    elif template is not None:
        rootfs.clone(template, root)
    key = _make_ssh_key(machine_dir, root)
    (root / "etc/hostname").write_text(f"{name}\n")
    link = network.plan(name)
    network.create(link)
    started = time.monotonic()
    pid = machine.start(name, root, link.netns, machine_dir / "console.log")
    ws = Workstation(
        name=name,
        root=root,
        netns=link.netns,
        host_ip=link.host_ip,
        guest_ip=link.guest_ip,
        ssh_key=key,
        inventory=machine_dir / "inventory.ini",
        machine_dir=machine_dir,
        host_veth=link.host_veth,
        nspawn_pid=pid,
    )
    _write_state(machine_dir, {**_state_of(ws), "owner_pid": owner})
    ws.inventory.write_text(render_inventory(ws))
    try:
        _wait_until_up(ws)
    except BaseException:
        shutdown(ws)
        raise
    ws.boot_seconds = time.monotonic() - started
    log.info(f"{name} booted in {ws.boot_seconds:.1f} s ({ws.guest_ip})")
    return ws


def shutdown(ws: Workstation) -> None:
    """Power off, kill what is left, delete the namespace, mounts and the machine directory."""
    _close_ssh_masters(ws.machine_dir, ws.guest_ip)
    machine.stop(ws.name, [ws.nspawn_pid, *machine.nspawn_pids_for(ws.root)])
    network.remove(network.Link(ws.netns, ws.host_veth, ws.host_ip, ws.guest_ip))
    machine.unmount_below(ws.machine_dir)
    shutil.rmtree(ws.machine_dir, ignore_errors=True)


@contextlib.contextmanager
def booted(name: str, template: Path | None = None) -> Iterator[Workstation]:
    ws = boot(name, template=template)
    try:
        yield ws
    finally:
        shutdown(ws)


def render_inventory(ws: Workstation) -> str:
    ssh_args = " ".join(SSH_OPTIONS)
    return (
        "# Written by tests/host/workstation.py for one booted test workstation.\n"
        "[cpu_workstations]\n"
        f"{ws.name} ansible_host={ws.guest_ip}\n\n"
        "[workstations:children]\ncpu_workstations\n\n"
        "[workstations:vars]\n"
        "ansible_user=root\n"
        "ansible_python_interpreter=/usr/bin/python3\n"
        f"ansible_ssh_private_key_file={ws.ssh_key}\n"
        f"ansible_ssh_common_args='{ssh_args}'\n"
    )


def _make_ssh_key(machine_dir: Path, root: Path) -> Path:
    key = machine_dir / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "offgrid-test", "-f", str(key)],
        check=True,
    )
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    authorized = ssh_dir / "authorized_keys"
    authorized.write_text(key.with_suffix(".pub").read_text())
    authorized.chmod(0o600)
    return key


def _wait_until_up(ws: Workstation, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not machine.alive(ws.nspawn_pid):
            raise RuntimeError(f"systemd-nspawn exited during boot:\n{_console_tail(ws)}")
        if ws.run("true", check=False, timeout=15).returncode == 0:
            break
        time.sleep(0.5)
    else:
        raise RuntimeError(f"no SSH on {ws.guest_ip} after {timeout_s:.0f} s:\n{_console_tail(ws)}")
    # SSH answers before boot finishes; provisioning must not race the remaining jobs.
    state = ws.run("systemctl is-system-running --wait", check=False, timeout=120).stdout.strip()
    if state not in ("running", "degraded"):
        raise RuntimeError(f"{ws.name} did not finish booting (state {state!r})")
    if state == "degraded":
        failed = ws.run("systemctl --failed --no-legend --plain", check=False).stdout
        log.info(f"{ws.name} booted degraded; failed units:\n{failed}")


def _console_tail(ws: Workstation, lines: int = 40) -> str:
    with contextlib.suppress(OSError):
        return "\n".join((ws.machine_dir / "console.log").read_text().splitlines()[-lines:])
    return "(no console log)"


def _close_ssh_masters(machine_dir: Path, guest_ip: str) -> None:
    close_ssh_masters([machine_dir / "ssh-control"], machine_dir / "ansible-cp", guest_ip)


def close_ssh_masters(sockets: list[Path], cp_dir: Path, guest_ip: str) -> None:
    """Ask every SSH master on these sockets (and those in ansible's cp_dir) to exit."""
    if cp_dir.is_dir():
        sockets = [*sockets, *cp_dir.iterdir()]
    for sock in sockets:
        if sock.is_socket():
            subprocess.run(
                ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", f"root@{guest_ip}"],
                check=False,
                capture_output=True,
                timeout=10,
            )


# -- state and leftovers -------------------------------------------------------------------
def _state_of(ws: Workstation) -> dict[str, Any]:
    state = asdict(ws)
    state.pop("runs")
    state.pop("provisioning")
    return {key: str(value) if isinstance(value, Path) else value for key, value in state.items()}


def _write_state(machine_dir: Path, state: dict[str, Any]) -> None:
    (machine_dir / "state.json").write_text(json.dumps(state, indent=2))


def _load(machine_dir: Path) -> Workstation | None:
    try:
        state = json.loads((machine_dir / "state.json").read_text())
        return Workstation(
            name=state["name"],
            root=Path(state["root"]),
            netns=state["netns"],
            host_ip=state["host_ip"],
            guest_ip=state["guest_ip"],
            ssh_key=Path(state["ssh_key"]),
            inventory=Path(state["inventory"]),
            machine_dir=Path(state["machine_dir"]),
            host_veth=state["host_veth"],
            nspawn_pid=int(state["nspawn_pid"]),
            boot_seconds=float(state.get("boot_seconds", 0.0)),
        )
    except (OSError, ValueError, KeyError):
        return None


def _clean_leftovers(name: str) -> None:
    """Remove this name's remains and any machine whose owning session died."""
    if not WORK_ROOT.is_dir():
        return
    for machine_dir in sorted(WORK_ROOT.iterdir()):
        if machine_dir.name == name or _owner_is_dead(machine_dir):
            log.info(f"cleaning up the leftover workstation {machine_dir.name}")
            _force_remove(machine_dir)
    # The name's network objects may outlive a machine directory deleted by hand.
    network.remove(network.Link(f"offgrid-{name}", network.plan_veth_name(name), "", ""))
    machine.stop(name, [])


def _owner_is_dead(machine_dir: Path) -> bool:
    try:
        owner = json.loads((machine_dir / "state.json").read_text()).get("owner_pid")
    except (OSError, ValueError):
        return False  # half-created by a live session, or not ours: leave it
    return isinstance(owner, int) and not machine.alive(owner)


def _force_remove(machine_dir: Path) -> None:
    ws = _load(machine_dir)
    if ws is not None:
        shutdown(ws)
        return
    name = machine_dir.name
    machine.stop(name, machine.nspawn_pids_for(machine_dir / "root"))
    network.remove(network.Link(f"offgrid-{name}", network.plan_veth_name(name), "", ""))
    machine.unmount_below(machine_dir)
    shutil.rmtree(machine_dir, ignore_errors=True)


def down(name: str) -> None:
    machine_dir = WORK_ROOT / name
    if machine_dir.exists():
        _force_remove(machine_dir)
    _clean_leftovers(name)


# -- command line --------------------------------------------------------------------------
def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.host.workstation",
        description="Boot or stop the offline test workstation.",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    up = sub.add_parser("up", help="boot it (replacing a running one) and print how to SSH in")
    up.add_argument(
        "--provision",
        action="store_true",
        help="apply playbooks/site.yml from a freshly built test bundle",
    )
    up.add_argument("--engine", choices=("llamacpp", "ollama"), default="llamacpp")
    up.add_argument("--name", default=CLI_NAME)
    stop = sub.add_parser("down", help="power it off and remove everything it left")
    stop.add_argument("--name", default=CLI_NAME)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.action == "down":
        down(args.name)
        log.info(f"{args.name} is down")
        return 0
    ws = boot(args.name, persistent=True)
    if args.provision:
        from tests.host import bundle  # noqa: PLC0415  (builds wheels: only when provisioning)

        test_bundle = bundle.build_test_bundle(ws.machine_dir / "bundle", engine=args.engine)
        log.info(f"provisioning {ws.name} with the {args.engine} engine (playbooks/site.yml)")
        run = ws.playbook(SITE_PLAYBOOK, extra_vars=bundle.site_vars(test_bundle, args.engine))
        log.info(f"provisioned in {run.duration_s:.0f} s: {run.stats.get(ws.name)}")
    log.out(f"{ws.name} is up ({ws.guest_ip}, booted in {ws.boot_seconds:.1f} s)")
    log.out(f"  ssh:       {ws.ssh_hint()}")
    log.out(f"  inventory: {ws.inventory}")
    name_flag = "" if args.name == CLI_NAME else f" --name {args.name}"
    log.out(f"  stop:      .venv/bin/python -m tests.host.workstation down{name_flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

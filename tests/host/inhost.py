"""Helpers for tests that act inside the provisioned workstation: audit, restart, probe."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from tests.host.bundle import TestBundle, site_vars
from tests.host.workstation import Workstation

LLAMACPP_UNIT = "offgrid-llamacpp.service"
LLAMACPP_PORT = 8080
DROPIN_DIR = f"/etc/systemd/system/{LLAMACPP_UNIT}.d"
# The OG-NET-04 probe target on the controller's end of the veth; the `provisioned` fixture
# writes it into /etc/offgrid/offgrid.toml, and `audit()` listens on it for every run.
PROBE_PORT = 47474


@dataclass(frozen=True)
class AuditRun:
    rc: int
    statuses: dict[str, str]  # control id -> pass | fail | error | not_applicable
    summaries: dict[str, str]

    def failing(self) -> list[str]:
        return sorted(cid for cid, status in self.statuses.items() if status == "fail")

    def not_passing(self) -> dict[str, str]:
        return {
            cid: f"{status}: {self.summaries[cid]}"
            for cid, status in self.statuses.items()
            if status not in ("pass", "not_applicable")
        }


def probe_target(ws: Workstation) -> str:
    return f"{ws.host_ip}:{PROBE_PORT}"


def provisioned_vars(ws: Workstation, bundle: TestBundle) -> dict[str, object]:
    """site.yml's extra vars for the `provisioned` host: the llamacpp engine from the test
    bundle, and the auditor's egress probe aimed at the controller's end of the veth."""
    return {**site_vars(bundle, "llamacpp"), "offgrid_auditor_egress_probe": probe_target(ws)}


def audit(ws: Workstation, *flags: str) -> AuditRun:
    """`offgrid audit` inside the workstation with its /etc/offgrid/offgrid.toml, as root,
    while the egress probe target listens."""
    with probe_listener(ws):
        result = ws.run(
            f"offgrid audit --format json --output /root/audit.json {' '.join(flags)}",
            check=False,
            timeout=180,
        )
    if result.returncode not in (0, 1, 3):
        raise AssertionError(f"offgrid audit crashed (rc={result.returncode}):\n{result.stderr}")
    report = json.loads(ws.run("cat /root/audit.json").stdout)
    controls = report["controls"]
    return AuditRun(
        result.returncode,
        {c["id"]: c["status"] for c in controls},
        {c["id"]: c["summary"] for c in controls},
    )


def restart_engine(ws: Workstation, port: int = LLAMACPP_PORT) -> None:
    """daemon-reload, restart the engine and wait until it answers on loopback again."""
    ws.run(f"systemctl daemon-reload && systemctl restart {LLAMACPP_UNIT}")
    ws.run(
        f"for i in $(seq 120); do curl -sf -o /dev/null http://127.0.0.1:{port}/v1/models "
        "&& exit 0; sleep 0.5; done; journalctl -u offgrid-llamacpp -n 30 --no-pager; exit 1",
        timeout=90,
    )


@contextlib.contextmanager
def probe_listener(ws: Workstation, port: int = PROBE_PORT) -> Iterator[str]:
    """A TCP listener on the controller's end of the management veth: the OG-NET-04 probe
    target. Yields "HOST:PORT"; the auditor must reach it, the engine must not."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((ws.host_ip, port))
    server.listen(16)
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                conn, _ = server.accept()
                conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"{ws.host_ip}:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()


def engine_listeners(ws: Workstation, unit: str, port: int) -> list[str]:
    """The local addresses the engine unit's own processes listen on for `port`, read inside
    the engine's network namespace (its own under the seal, else the host's): each listener's
    owner must be a process of the unit's cgroup."""
    main = int(ws.run(f"systemctl show -p MainPID --value {unit}").stdout.strip())
    assert main > 0, unit
    lines = ws.run(f"nsenter --target={main} --net ss -Htlnp 'sport = :{port}'").stdout
    found = []
    for line in filter(str.strip, lines.splitlines()):
        owners = [int(p) for p in re.findall(r"pid=(\d+)", line)]
        assert owners, line
        for pid in owners:
            assert f"/{unit}" in ws.run(f"cat /proc/{pid}/cgroup").stdout, (line, pid)
        found.append(line.split()[3])
    return found

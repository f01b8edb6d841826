"""The active egress probe (OG-NET-04): connect as the engine would, and see if it is stopped.

A configured IPAddressDeny= proves nothing on its own: without cgroup v2 and bpf()
systemd keeps reporting the setting while packets leave. So a child process joins
the engine's cgroup, drops to the engine's uid/gid and connects to a probe address
the user configured. The same address must first accept a connection from the
auditor itself, outside the unit: otherwise a refusal would prove nothing.

An engine in another network namespace (a sealed unit, a container) sends from there, so
the probe connects from there too: the child enters the engine's namespace (setns, as root)
before it becomes the engine's user.

Run as `python -m auditor.inventory.egress_probe CGROUP_PROCS UID GID HOST PORT TIMEOUT
[NETNS_PID]` (the child); `probe()` is the parent side.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from auditor.errors import InputError
from auditor.inventory import netns
from auditor.inventory.interface import ProbeResult

DEFAULT_TIMEOUT_S = 3.0
# The probe connects from this source port (outside Linux's default ephemeral range), so
# the packet the kernel records for it is recognisable as the audit's, night after night.
# When the port is taken the probe falls back to any port and reports which.
PROBE_SOURCE_PORT = 64999

# A failed connect with these errors, after the control connection succeeded, means a
# local policy (BPF cgroup filter, nft drop → EPERM; reject → ECONNREFUSED/unreachable)
# stopped the packet.
_BLOCKED_ERRNOS = {
    errno.EPERM: "EPERM (denied by local policy)",
    errno.EACCES: "EACCES (denied by local policy)",
    errno.EHOSTUNREACH: "EHOSTUNREACH (ICMP unreachable / admin-prohibited)",
    errno.ENETUNREACH: "ENETUNREACH (ICMP net unreachable)",
    errno.ECONNREFUSED: "ECONNREFUSED (rejected, while the target accepts the auditor)",
}


def parse_target(text: str) -> tuple[str, int]:
    """HOST:PORT or [V6]:PORT with an IP literal (no name lookups); loopback is refused."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InputError(f"egress probe {text!r}: expected HOST:PORT")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise InputError(f"egress probe {text!r}: HOST must be an IP address") from None
    if address.is_loopback or address.is_unspecified:
        raise InputError(f"egress probe {text!r}: must be a non-loopback address")
    return str(address), int(port_text)


def connect_outcome(host: str, port: int, timeout_s: float) -> tuple[str, str, int | None]:
    """("connected" | "blocked" | "error", detail, the source port) for one TCP connect.

    The source port is bound first, so the packet the kernel records is recognisable
    as this probe's.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        source_port = _bind_source(sock, family)
        outcome, detail = _connect(sock, host, port, timeout_s)
    return outcome, detail, source_port


def _bind_source(sock: socket.socket, family: int) -> int | None:
    """Bind PROBE_SOURCE_PORT, or any port when it is taken; the port bound, if any."""
    anywhere = "::" if family == socket.AF_INET6 else "0.0.0.0"  # noqa: S104  (a source port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for port in (PROBE_SOURCE_PORT, 0):
        try:
            sock.bind((anywhere, port))
        except OSError:
            continue
        return int(sock.getsockname()[1])
    return None


def _connect(sock: socket.socket, host: str, port: int, timeout_s: float) -> tuple[str, str]:
    try:
        sock.connect((host, port))
    except TimeoutError:
        return "blocked", f"no answer within {timeout_s:g}s (dropped)"
    except OSError as exc:
        if exc.errno in _BLOCKED_ERRNOS:
            return "blocked", _BLOCKED_ERRNOS[exc.errno]
        return "error", f"{errno.errorcode.get(exc.errno or 0, exc.errno)}: {exc.strerror}"
    return "connected", f"connected to {host}:{port}"


def cgroup_procs_path(pid: int) -> Path | None:
    """The cgroup v2 `cgroup.procs` of a process (unified or hybrid hierarchy)."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    relative = next((line[3:] for line in lines if line.startswith("0::")), None)
    mount = next((m.split()[4] for m in mounts if " - cgroup2 " in m), None)
    if relative is None or mount is None:
        return None
    path = Path(mount) / relative.lstrip("/") / "cgroup.procs"
    return path if path.exists() else None


def probe(
    target: str,
    engine_pid: int,
    uid: int,
    gid: int,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    *,
    in_engine_netns: bool = False,
) -> ProbeResult:
    host, port = parse_target(target)
    procs = cgroup_procs_path(engine_pid)

    def result(
        outcome: str, detail: str, control: bool | None, source_port: int | None = None
    ) -> ProbeResult:
        cgroup = str(procs.parent) if procs else None
        return ProbeResult(
            target, outcome, detail, control, cgroup, uid, gid, source_port, namespace=namespace
        )

    namespace = netns.namespace_of(engine_pid) if in_engine_netns else None

    if os.geteuid() != 0:
        return result("error", "the probe needs root (join a cgroup, switch user)", None)
    if procs is None:
        return result("error", f"no cgroup v2 membership found for pid {engine_pid}", None)
    control, control_detail, _ = connect_outcome(host, port, timeout_s)
    if control != "connected":
        return result(
            "error",
            f"the probe target does not accept the auditor itself ({control_detail}); "
            "a refusal from the unit would prove nothing",
            False,
        )
    args = [str(procs), str(uid), str(gid), host, str(port), str(timeout_s)]
    if in_engine_netns:
        args.append(str(engine_pid))
    try:
        done = subprocess.run(
            [sys.executable, "-m", __name__, *args], capture_output=True, text=True,
            timeout=timeout_s + 10, check=False,
        )  # fmt: skip
        reply = json.loads(done.stdout)
        source = reply.get("source_port")
        return result(str(reply["outcome"]), str(reply["detail"]), True,
                      source if isinstance(source, int) else None)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError) as exc:
        return result("error", f"probe child failed: {exc}", True)


def _become(procs: str, uid: str, gid: str) -> str | None:
    """Join the cgroup and drop to the engine's user and group; the error, if any."""
    try:
        Path(procs).write_text(f"{os.getpid()}\n")
        os.setgroups([])
        os.setgid(int(gid))
        os.setuid(int(uid))
    except OSError as exc:
        return f"could not become the engine: {exc}"
    return None


def _child(argv: list[str]) -> dict[str, str | int | None]:
    procs, uid, gid, host, port, timeout_s = argv[:6]

    def attempt() -> dict[str, str | int | None]:
        failed = _become(procs, uid, gid)
        if failed is not None:
            return {"outcome": "error", "detail": failed}
        outcome, detail, source_port = connect_outcome(host, int(port), float(timeout_s))
        return {"outcome": outcome, "detail": detail, "source_port": source_port}

    if len(argv) < 7:
        return attempt()
    try:
        # the thread enters the namespace as root, then the whole process becomes the engine
        return netns.in_namespace(int(argv[6]), attempt)
    except netns.NamespaceError as exc:
        return {"outcome": "error", "detail": f"could not enter the engine's namespace: {exc}"}


if __name__ == "__main__":
    sys.stdout.write(json.dumps(_child(sys.argv[1:])) + "\n")

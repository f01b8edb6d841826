"""A network namespace of the test's own, and processes started inside it.

Every "non-loopback" address the audit tests use lives on an interface inside
this namespace, so no packet ever reaches a network the tests do not own.
`nsenter --net` is used rather than `ip netns exec`: it changes only the network
namespace, so /sys/fs/cgroup (needed by the egress probe) stays visible.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PEER_ADDRESS = "198.18.77.1"  # RFC 2544 benchmarking range, on the namespace's own link
PEER_ADDRESS6 = "2001:db8:77::1"  # RFC 3849 documentation range


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass
class Namespace:
    name: str
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["nsenter", f"--net={self.path}", *argv]

    def spawn(self, argv: Sequence[str], user: int | None = None) -> subprocess.Popen[str]:
        """Start argv inside the namespace (optionally as uid=gid=user); wait for "ready"."""
        prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user else []
        proc = subprocess.Popen(
            self.command([*prefix, *argv]), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        )  # fmt: skip
        self.processes.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(
                f"{argv} did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}"
            )
        return proc

    def run(self, argv: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(argv), capture_output=True, text=True, timeout=timeout, check=False
        )

    def stop_all(self) -> None:
        for proc in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        self.processes.clear()


@contextlib.contextmanager
def network_namespace(name: str) -> Iterator[Namespace]:
    """A fresh namespace with lo and a link holding the peer addresses; always removed."""
    if Path(f"/run/netns/{name}").exists():
        _ip("netns", "del", name)  # left over by a crashed run
    _ip("netns", "add", name)
    namespace = Namespace(name)
    try:
        for args in (
            ("link", "set", "lo", "up"),
            # a veth pair with both ends inside (this kernel has no dummy links)
            ("link", "add", "og-peer0", "type", "veth", "peer", "name", "og-peer1"),
            ("addr", "add", f"{PEER_ADDRESS}/24", "dev", "og-peer0"),
            ("addr", "add", f"{PEER_ADDRESS6}/64", "dev", "og-peer0", "nodad"),
            ("link", "set", "og-peer0", "up"),
            ("link", "set", "og-peer1", "up"),
        ):
            _ip("-n", name, *args)
        yield namespace
    finally:
        namespace.stop_all()
        _ip("netns", "del", name)


def seal(namespace: Namespace, rules: str) -> None:
    """Make `namespace` look like role offgrid_seal's: the peer link removed, a sink (a veth
    pair with both ends inside, 192.0.2.1, the default route) and `rules` loaded by nft."""
    _ip("-n", namespace.name, "link", "del", "og-peer0")
    for args in (
        ("link", "add", "og-sink0", "type", "veth", "peer", "name", "og-sink1"),
        ("addr", "add", "192.0.2.1/32", "dev", "og-sink0"),
        ("link", "set", "og-sink0", "up"),
        ("route", "add", "default", "dev", "og-sink0"),
    ):
        _ip("-n", namespace.name, *args)
    subprocess.run(namespace.command(["nft", "-f", "-"]), input=rules, text=True, check=True)


ULOGD_PLUGINS = Path("/usr/lib/x86_64-linux-gnu/ulogd")
_ULOGD_CONF = """\
[global]
logfile="{dir}/ulogd.log"
loglevel=3
plugin="{plugins}/ulogd_inppkt_NFLOG.so"
plugin="{plugins}/ulogd_raw2packet_BASE.so"
plugin="{plugins}/ulogd_filter_IFINDEX.so"
plugin="{plugins}/ulogd_filter_IP2STR.so"
plugin="{plugins}/ulogd_output_JSON.so"
stack=log1:NFLOG,base1:BASE,ifi1:IFINDEX,ip2str1:IP2STR,json1:JSON
[log1]
group={group}
netlink_qthreshold=1
[json1]
sync=1
file="{dir}/{log}"
"""


def ulogd_conf(directory: Path, group: int, log: str) -> str:
    """A ulogd2 configuration as the roles render it: NFLOG `group` to JSON lines in
    directory/log, ulogd's own messages in directory/ulogd.log."""
    return _ULOGD_CONF.format(dir=directory, plugins=ULOGD_PLUGINS, group=group, log=log)

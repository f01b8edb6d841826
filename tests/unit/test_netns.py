"""Reading another network namespace from inside it, against namespaces this test creates.

Each namespace is anonymous (`unshare --net`): it lives as long as the process the test
starts in it and disappears with it, so a crashed run leaves nothing behind. Root only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditor.inventory import netns, rtnetlink, sockdiag

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare to create network namespaces",
)

# a veth with both ends inside, an address and a default route through it
SETUP = """
ip link set lo up
ip link add og-v0 type veth peer name og-v1
ip addr add 198.18.9.2/24 dev og-v0
ip link set og-v0 up
ip link set og-v1 up
ip route add default via 198.18.9.1
"""
LISTENER = """
import socket, sys, time
s = socket.socket(); s.bind((sys.argv[1], 11434)); s.listen()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
print("ready", flush=True)
time.sleep(600)
"""


def _start(setup: str, bind: str) -> subprocess.Popen[str]:
    script = f"{setup}\nexec {sys.executable} -c '{LISTENER}' {bind}"
    proc = subprocess.Popen(
        ["unshare", "--net", "sh", "-ec", script],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"namespace did not start: {line!r} {proc.communicate()[1]}")
    return proc


@pytest.fixture
def engine() -> Iterator[subprocess.Popen[str]]:
    proc = _start(SETUP, "0.0.0.0")
    yield proc
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@pytest.fixture
def sealed() -> Iterator[subprocess.Popen[str]]:
    proc = _start("ip link set lo up", "127.0.0.1")
    yield proc
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def test_sockets_of_another_namespace_with_owners_among_the_pids_given(
    engine: subprocess.Popen[str],
) -> None:
    facts = netns.read_namespace(engine.pid, owners=[engine.pid])
    assert facts.error is None and not facts.shares_audit_namespace
    assert facts.namespace == netns.namespace_of(engine.pid) != netns.namespace_of(os.getpid())
    assert facts.sockets is not None
    listeners = [s for s in facts.sockets if s.state == "LISTEN"]
    assert [(s.local_address, s.local_port, s.pid) for s in listeners] == [
        ("0.0.0.0", 11434, engine.pid)
    ]
    udp = [s for s in facts.sockets if s.protocol == "udp"]
    assert [(s.local_address, s.pid) for s in udp] == [("127.0.0.1", engine.pid)]
    # the audit's own namespace has no such listener from this process
    own = netns.read_namespace(os.getpid(), role="audit")
    assert own.shares_audit_namespace and own.error is None and own.sockets is not None
    assert not any(s.pid == engine.pid for s in own.sockets)


def test_owners_are_left_unknown_outside_the_pids_given(engine: subprocess.Popen[str]) -> None:
    facts = netns.read_namespace(engine.pid)
    assert facts.sockets and all(s.pid is None for s in facts.sockets)
    assert all(s.inode for s in facts.sockets)


def test_interfaces_addresses_routes_and_counters(engine: subprocess.Popen[str]) -> None:
    facts = netns.read_namespace(engine.pid)
    assert facts.interfaces is not None and facts.routes is not None
    by_name = {i.name: i for i in facts.interfaces}
    assert set(by_name) == {"lo", "og-v0", "og-v1"}
    assert by_name["lo"].loopback and by_name["lo"].link_type == 772
    v0, v1 = by_name["og-v0"], by_name["og-v1"]
    assert (v0.kind, v0.up, v0.peer_index, v0.peer_netnsid) == ("veth", True, v1.index, None)
    assert "198.18.9.2/24" in v0.addresses
    assert v0.tx_packets is not None and v0.rx_packets is not None
    default = [r for r in facts.routes if r.destination == "default" and r.family == "ipv4"]
    assert [(r.type, r.devices, r.gateway, r.table) for r in default] == [
        ("unicast", ("og-v0",), "198.18.9.1", 254)
    ]
    local = [r for r in facts.routes if r.type == "local" and r.destination == "198.18.9.2/32"]
    assert [r.table for r in local] == [255]


def test_loopback_only_namespace(sealed: subprocess.Popen[str]) -> None:
    facts = netns.read_namespace(sealed.pid, owners=[sealed.pid])
    assert facts.interfaces is not None and facts.routes is not None
    assert [i.name for i in facts.interfaces] == ["lo"]
    assert {d for r in facts.routes for d in r.devices} == {"lo"}
    assert facts.sockets is not None
    assert {(s.local_address, s.state) for s in facts.sockets if s.protocol == "tcp"} == {
        ("127.0.0.1", "LISTEN")
    }


def test_links_false_reads_sockets_only(sealed: subprocess.Popen[str]) -> None:
    facts = netns.read_namespace(sealed.pid, links=False)
    assert facts.sockets and facts.interfaces is None and facts.routes is None
    assert facts.error is None


def test_a_gone_process_is_an_error_not_an_empty_namespace() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    facts = netns.read_namespace(proc.pid)
    assert facts.error == f"process {proc.pid} is gone"
    assert facts.sockets is None and facts.interfaces is None and facts.routes is None


def test_without_cap_sys_admin_the_reason_is_said(sealed: subprocess.Popen[str]) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    code = (
        "import sys; from auditor.inventory import netns; "
        "f = netns.read_namespace(int(sys.argv[1])); print(f.error); print(f.sockets)"
    )
    done = subprocess.run(
        ["setpriv", "--inh-caps=-all", "--bounding-set=-sys_admin",
         sys.executable, "-c", code, str(sealed.pid)],
        capture_output=True, text=True, check=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    error, table = done.stdout.splitlines()
    assert error == (
        f"setns into /proc/{sealed.pid}/ns/net: Operation not permitted (needs CAP_SYS_ADMIN)"
    )
    assert table == "None"


def test_in_namespace_runs_in_a_thread_and_leaves_the_caller_where_it_was(
    sealed: subprocess.Popen[str],
) -> None:
    before = os.readlink("/proc/thread-self/ns/net")
    inside = netns.in_namespace(sealed.pid, lambda: os.readlink("/proc/thread-self/ns/net"))
    assert inside == netns.namespace_of(sealed.pid) != before
    assert os.readlink("/proc/thread-self/ns/net") == before


def test_in_namespace_hands_back_what_the_work_raised(sealed: subprocess.Popen[str]) -> None:
    def fail() -> None:
        raise ValueError("inside")

    with pytest.raises(ValueError, match="inside"):
        netns.in_namespace(sealed.pid, fail)


def test_attributes_stop_at_a_truncated_attribute() -> None:
    data = b"\x08\x00\x03\x00abc\x00" + b"\x02\x00\x01\x00"
    assert list(rtnetlink.attributes(data)) == [(3, b"abc\x00")]


def test_diag_socket_reads_its_namespace_from_the_callers_thread(
    sealed: subprocess.Popen[str],
) -> None:
    with netns.diag_socket(sealed.pid) as sock:
        first = sockdiag.dump(sock=sock)
        again = sockdiag.dump(leaving_only=True, sock=sock)
    assert {(s.local_address, s.local_port) for s in first if s.state == "LISTEN"} == {
        ("127.0.0.1", 11434)
    }
    assert again == ()  # nothing there has a peer outside loopback
    own = {s.inode for s in sockdiag.dump()}
    assert not own & {s.inode for s in first}

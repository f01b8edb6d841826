"""The socket inventory agrees with `ss -tuanp` on the same machine.

Sockets come and go while two tools read them (other processes run here), so the
comparison tolerates churn: whatever `ss` saw both before and after the inventory
must be in the inventory with an owner `ss` agrees with, and everything in the
inventory must have been seen by `ss` at least once. A round that still disagrees
is retried; three disagreeing rounds fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.netns import PEER_ADDRESS, PEER_ADDRESS6, Namespace, network_namespace

pytestmark = pytest.mark.root

STANDIN = Path(__file__).resolve().parents[1] / "standins" / "engine_sockets_standin.py"
Key = tuple[str, str, int, str | None, int | None]

_INVENTORY = (
    "import json; from auditor.inventory.sockets import snapshot;"
    "print(json.dumps([[s.protocol, s.local_address, s.local_port, s.remote_address,"
    " s.remote_port, s.pid] for s in snapshot()]))"
)


def _host(text: str) -> str:
    host = text.strip("[]").split("%", 1)[0]
    return "*" if host in ("*", "0.0.0.0", "::") else host


def _endpoint(text: str) -> tuple[str, int | None]:
    host, _, port = text.rpartition(":")
    return _host(host), None if port == "*" else int(port)


def _pids(process: str) -> frozenset[int]:
    return frozenset(int(part.split(",", 1)[0]) for part in process.split("pid=")[1:])


def parse_ss(text: str) -> dict[Key, frozenset[int]]:
    sockets: dict[Key, frozenset[int]] = {}
    for line in text.splitlines():
        fields = line.split(None, 6)
        if len(fields) < 6 or fields[0] not in ("tcp", "udp"):
            continue
        local, lport = _endpoint(fields[4])
        remote, rport = _endpoint(fields[5])
        if remote == "*" and rport is None:
            remote = None
        key = (fields[0], local, lport or 0, remote, rport)
        sockets[key] = sockets.get(key, frozenset()) | _pids(fields[6] if len(fields) > 6 else "")
    return sockets


def parse_inventory(text: str) -> dict[Key, frozenset[int]]:
    sockets: dict[Key, frozenset[int]] = {}
    for proto, local, lport, remote, rport, pid in json.loads(text):
        key = (proto, _host(local), lport, _host(remote) if remote else None, rport)
        sockets[key] = sockets.get(key, frozenset()) | (frozenset({pid}) if pid else frozenset())
    return sockets


@dataclass
class Round:
    before: dict[Key, frozenset[int]]
    inventory: dict[Key, frozenset[int]]
    after: dict[Key, frozenset[int]]

    def problems(self) -> list[str]:
        found = []
        for key in self.before.keys() & self.after.keys():
            if key not in self.inventory:
                found.append(f"missing from the inventory: {key}")
            elif (
                self.before[key] == self.after[key] and not self.inventory[key] <= self.before[key]
            ):
                found.append(f"owner differs: {key} ss {set(self.before[key])} "
                             f"inventory {set(self.inventory[key])}")  # fmt: skip
        for key in self.inventory.keys() - self.before.keys() - self.after.keys():
            found.append(f"not seen by ss: {key}")
        return found


def _read(prefix: Sequence[str], argv: Sequence[str]) -> str:
    return subprocess.run([*prefix, *argv], capture_output=True, text=True, check=True).stdout


def compare(prefix: Sequence[str] = ()) -> tuple[Round, list[str]]:
    problems: list[str] = []
    for _ in range(3):
        ss = ["ss", "-H", "-tuanp"]
        current = Round(
            parse_ss(_read(prefix, ss)),
            parse_inventory(_read(prefix, [sys.executable, "-c", _INVENTORY])),
            parse_ss(_read(prefix, ss)),
        )
        problems = current.problems()
        if not problems:
            break
    return current, problems


def test_inventory_matches_ss_on_this_machine() -> None:
    current, problems = compare()
    assert problems == []
    assert current.inventory, "no sockets at all: the comparison proved nothing"


@pytest.fixture
def busy_namespace() -> Iterator[Namespace]:
    """Listeners on v4/v6 loopback and wildcard, UDP, and established connections."""
    with network_namespace("offgrid-audit-ss") as ns:
        python = "/usr/bin/python3"
        ns.spawn([python, str(STANDIN), "peer", "--listen", f"{PEER_ADDRESS}:9443",
                  "--listen", f"[{PEER_ADDRESS6}]:9443"])  # fmt: skip
        ns.spawn([python, str(STANDIN), "serve", "--listen", "127.0.0.1:11434",
                  "--listen", "[::]:8080", "--listen", "0.0.0.0:8081", "--listen", "[::1]:11434",
                  "--udp", "0.0.0.0:5353", "--udp", "[::1]:5354",
                  "--connect", f"{PEER_ADDRESS}:9443", "--connect", f"[{PEER_ADDRESS6}]:9443",
                  "--connect", "127.0.0.1:11434"])  # fmt: skip
        yield ns


def test_inventory_matches_ss_in_a_namespace_with_every_kind(busy_namespace: Namespace) -> None:
    current, problems = compare(["nsenter", f"--net={busy_namespace.path}"])
    assert problems == []
    keys = current.inventory.keys()
    assert ("udp", "*", 5353, None, None) in keys
    assert ("tcp", "::1", 11434, None, None) in keys
    established = [k for k in keys if k[3] in (PEER_ADDRESS, PEER_ADDRESS6)]
    assert len(established) == 4  # both ends of each connection live in the namespace
    assert all(current.inventory[k] for k in established), "established sockets have owners"

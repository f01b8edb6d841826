"""What records an attempt out of a sealed namespace, measured with real namespaces and nft.

The namespace is set up as role offgrid_seal sets up the engine's: loopback, a sink (a veth
pair with both ends inside, the default route) and a rule that logs, counts and rejects what
is sent to it. A second namespace stands for the host. No packet leaves either.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.netns import Namespace, network_namespace
from tests.integration.netns import seal as seal_namespace

pytestmark = pytest.mark.root

LISTENER = Path(__file__).with_name("nflog_listener.py")
GROUP = 7412
RULES = f"""\
table inet offgrid_seal {{
  chain output {{
    type filter hook output priority filter; policy accept;
    oifname "lo" accept
    log prefix "ogseal-test " group {GROUP}
    counter reject
  }}
}}
"""
CONNECT = (
    "import errno, socket\n"
    "s = socket.socket(); s.settimeout(5)\n"
    "try:\n    s.connect(('198.51.100.7', 80)); print('connected')\n"
    "except OSError as e:\n    print(errno.errorcode.get(e.errno))\n"
)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def sealed() -> Iterator[tuple[Namespace, Namespace]]:
    with network_namespace("og-rec-seal") as seal, network_namespace("og-rec-host") as host:
        seal_namespace(seal, RULES)
        yield seal, host


def _listen(ns: Namespace) -> subprocess.Popen[str]:
    return ns.spawn([sys.executable, str(LISTENER), str(GROUP), "10"])


def _result(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


def test_only_a_listener_inside_the_namespace_receives_the_attempt(
    sealed: tuple[Namespace, Namespace],
) -> None:
    seal, host = sealed
    inside, outside = _listen(seal), _listen(host)
    assert seal.run([sys.executable, "-c", CONNECT]).stdout.strip() == "ECONNREFUSED"
    assert _result(inside) == "packet"
    assert _result(outside) == "nothing"
    counted = seal.run(["nft", "list", "table", "inet", "offgrid_seal"]).stdout
    assert "counter packets 0 " not in counted and "counter packets" in counted


def test_without_the_sink_the_attempt_never_reaches_the_rule(
    sealed: tuple[Namespace, Namespace],
) -> None:
    seal, _ = sealed
    _ip("-n", seal.name, "link", "del", "og-sink0")
    inside = _listen(seal)
    assert seal.run([sys.executable, "-c", CONNECT]).stdout.strip() == "ENETUNREACH"
    assert _result(inside) == "nothing"
    assert "counter packets 0 " in seal.run(["nft", "list", "table", "inet", "offgrid_seal"]).stdout

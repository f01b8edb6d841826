"""OG-NET-04's probe connects from the engine's own network namespace when the engine runs in
another one (a sealed unit): real namespaces, a real nft reject rule, a real listener.

Namespace `audit` (where the probe's parent runs) holds the probe target; namespace `engine`
holds the engine stand-in, loopback and a sink (a veth pair, both ends inside, default route)
whose reject rule refuses and counts what is sent out, as role offgrid_seal sets it up. Only
these two namespaces, created by the test, ever see a packet.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.netns import PEER_ADDRESS, Namespace, network_namespace
from tests.integration.netns import seal as seal_namespace

pytestmark = pytest.mark.root

STANDIN = Path(__file__).resolve().parents[1] / "standins" / "engine_sockets_standin.py"
SERVICE_UID = 64124
TARGET = f"{PEER_ADDRESS}:9444"
SINK_RULES = """\
table inet offgrid_seal {
  chain output {
    type filter hook output priority filter; policy accept;
    oifname "lo" accept
    counter reject
  }
}
"""
PROBE = (
    "import dataclasses, json, sys\n"
    "from auditor.inventory import egress_probe\n"
    "r = egress_probe.probe(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[3]),"
    " in_engine_netns=sys.argv[4] == 'yes')\n"
    "print(json.dumps(dataclasses.asdict(r)))\n"
)


@pytest.fixture(scope="module")
def machine() -> Iterator[tuple[Namespace, Namespace, int]]:
    with network_namespace("og-probe-audit") as audit, network_namespace("og-probe-eng") as eng:
        # the engine's namespace: only lo and the sink pair (the helper's peer link removed)
        seal_namespace(eng, SINK_RULES)
        audit.spawn(["/usr/bin/python3", str(STANDIN), "peer", "--listen", TARGET])
        engine = eng.spawn(
            ["/usr/bin/python3", str(STANDIN), "serve", "--listen", "127.0.0.1:11434"],
            user=SERVICE_UID,
        )
        yield audit, eng, engine.pid


def _probe(audit: Namespace, pid: int, inside: bool) -> dict[str, object]:
    done = audit.run([sys.executable, "-c", PROBE, TARGET, str(pid), str(SERVICE_UID),
                      "yes" if inside else "no"])  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _counter(eng: Namespace) -> int:
    listed = eng.run(["nft", "--json", "list", "table", "inet", "offgrid_seal"]).stdout
    rules = [i["rule"] for i in json.loads(listed)["nftables"] if "rule" in i]
    return sum(e["counter"]["packets"] for r in rules for e in r["expr"] if "counter" in e)


def test_from_the_engine_namespace_the_seal_refuses_and_counts(
    machine: tuple[Namespace, Namespace, int],
) -> None:
    audit, eng, pid = machine
    before = _counter(eng)
    result = _probe(audit, pid, inside=True)
    assert (result["outcome"], result["control_reachable"]) == ("blocked", True), result
    assert "ECONNREFUSED" in str(result["detail"])
    namespace = subprocess.run(["readlink", f"/proc/{pid}/ns/net"], capture_output=True,
                               text=True, check=True).stdout.strip()  # fmt: skip
    assert result["namespace"] == namespace
    assert _counter(eng) > before


def test_from_the_audit_namespace_the_same_probe_connects(
    machine: tuple[Namespace, Namespace, int],
) -> None:
    """Without entering the engine's namespace the probe would judge a path the engine
    does not take: here nothing stops it."""
    audit, _, pid = machine
    result = _probe(audit, pid, inside=False)
    assert result["outcome"] == "connected", result
    assert result["namespace"] is None

"""OG-NET-04 against real nftables rules and a real egress probe, inside a test namespace.

The engine stand-in runs as an unprivileged uid; the rule matches that uid with
`meta skuid`, as role offgrid_egress does for the service user. The probe joins the
engine's cgroup, becomes its uid and connects to a peer inside the namespace: the
only place these tests ever send a packet.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.netns import PEER_ADDRESS, Namespace, network_namespace

pytestmark = pytest.mark.root

STANDIN = Path(__file__).resolve().parents[1] / "standins" / "engine_sockets_standin.py"
SERVICE_UID = 64123  # no passwd entry needed: nft and the probe work on the number
PEER = f"{PEER_ADDRESS}:9443"

RULESET = """\
table inet offgrid_egress {{
  chain output {{
    type filter hook output priority 0; policy accept;
    meta skuid {uid} ip daddr {daddr} counter {verdict} comment "OG-NET-04 engine egress"
  }}
}}
"""


@pytest.fixture
def netns() -> Iterator[Namespace]:
    with network_namespace("offgrid-audit-eg") as namespace:
        namespace.spawn(["/usr/bin/python3", str(STANDIN), "peer", "--listen", PEER])
        yield namespace


def _engine(ns: Namespace) -> int:
    argv = ["/usr/bin/python3", str(STANDIN), "serve", "--listen", "127.0.0.1:11434"]
    return ns.spawn(argv, user=SERVICE_UID).pid


def _nft(ns: Namespace, daddr: str, verdict: str) -> None:
    script = RULESET.format(uid=SERVICE_UID, daddr=daddr, verdict=verdict)
    subprocess.run(ns.command(["nft", "-f", "-"]), input=script, text=True, check=True)


def _og_net_04(ns: Namespace, tmp_path: Path, pid: int, *extra: str) -> dict:
    out = tmp_path / "report.json"
    done = ns.run(
        [sys.executable, "-m", "auditor", "audit", "--engine", "ollama", "--engine-pid", str(pid),
         "--output", str(out), *extra]
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    controls = {c["id"]: c for c in json.loads(out.read_text())["controls"]}
    return controls["OG-NET-04"]


def _evidence(control: dict) -> str:
    return " | ".join(f"{e['label']}: {e['value']}" for e in control["evidence"])


def test_no_rule_fails(netns: Namespace, tmp_path: Path) -> None:
    control = _og_net_04(netns, tmp_path, _engine(netns), "--egress-probe", PEER)
    assert control["status"] == "fail"


@pytest.mark.parametrize("verdict", ["drop", "reject"])
def test_enforced_rule_is_verified_by_the_probe(
    netns: Namespace, tmp_path: Path, verdict: str
) -> None:
    _nft(netns, "!= 127.0.0.0/8", verdict)
    control = _og_net_04(netns, tmp_path, _engine(netns), "--egress-probe", PEER)
    assert control["status"] == "pass", _evidence(control)
    assert "verified" in control["summary"]
    evidence = _evidence(control)
    assert "blocked" in evidence and "OG-NET-04 engine egress" in evidence
    # the rule was read after the probe: its counter holds the probe's stopped packet(s)
    assert re.search(r"counter [1-9]\d* packets", evidence), evidence


def test_rule_that_misses_the_traffic_is_not_enforcement(netns: Namespace, tmp_path: Path) -> None:
    _nft(netns, "198.18.99.0/24", "drop")  # present, but scoped to somewhere else
    control = _og_net_04(netns, tmp_path, _engine(netns), "--egress-probe", PEER)
    assert control["status"] == "fail", _evidence(control)
    assert "NOT enforced" in control["summary"]


def test_without_probe_address_enforcement_is_unverified(netns: Namespace, tmp_path: Path) -> None:
    _nft(netns, "!= 127.0.0.0/8", "drop")
    control = _og_net_04(netns, tmp_path, _engine(netns))
    assert control["status"] == "error"  # configured, never a pass while unproven
    assert "enforcement unverified (no probe address configured)" in _evidence(control)


def test_probe_target_that_accepts_nobody_is_an_error(netns: Namespace, tmp_path: Path) -> None:
    _nft(netns, "!= 127.0.0.0/8", "drop")
    closed = f"{PEER_ADDRESS}:9"  # nothing listens: a refusal would prove nothing
    control = _og_net_04(netns, tmp_path, _engine(netns), "--egress-probe", closed)
    assert control["status"] == "error", _evidence(control)

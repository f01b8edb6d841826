"""The audit against real sockets inside a network namespace the test owns.

An `ollama serve`-looking stand-in (the system python through a symlink named
`ollama`) opens exactly the sockets each case needs; `offgrid audit` runs as a real
process in the same namespace and must fail precisely the right controls.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.netns import PEER_ADDRESS, PEER_ADDRESS6, Namespace, network_namespace

pytestmark = pytest.mark.root

STANDIN = Path(__file__).resolve().parents[1] / "standins" / "engine_sockets_standin.py"
SYSTEM_PYTHON = "/usr/bin/python3"
ENGINE_PORT = 11434
PEER_PORT = 9443


@pytest.fixture
def netns() -> Iterator[Namespace]:
    with network_namespace("offgrid-audit-t") as namespace:
        yield namespace


@pytest.fixture(scope="module")
def ollama_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A world-readable directory with `ollama` -> the system python (argv[0], comm: ollama)."""
    directory = tmp_path_factory.mktemp("standin-bin")
    directory.chmod(0o755)
    exe = directory / "ollama"
    exe.symlink_to(SYSTEM_PYTHON)
    return exe


def start_engine(ns: Namespace, exe: Path, *args: str, user: int | None = None) -> int:
    proc = ns.spawn([str(exe), str(STANDIN), "serve", *args], user=user)
    return proc.pid


def start_peer(ns: Namespace, address: str = f"{PEER_ADDRESS}:{PEER_PORT}") -> None:
    """A non-engine process accepting connections on the namespace's "remote" address."""
    ns.spawn([SYSTEM_PYTHON, str(STANDIN), "peer", "--listen", address])


def audit(ns: Namespace, tmp_path: Path, pid: int, *extra: str) -> tuple[int, dict[str, dict]]:
    out = tmp_path / "report.json"
    done = ns.run(
        [sys.executable, "-m", "auditor", "audit", "--engine-pid", str(pid), "--output", str(out),
         *extra]
    )  # fmt: skip
    assert done.returncode in (0, 1, 3), done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(out.read_text())
    return done.returncode, {c["id"]: c for c in report["controls"]}


def status(controls: dict[str, dict], cid: str) -> str:
    return str(controls[cid]["status"])


def test_clean_engine_passes_the_network_controls(
    netns: Namespace, ollama_exe: Path, tmp_path: Path
) -> None:
    start_peer(netns)
    pid = start_engine(
        netns, ollama_exe, "--listen", f"127.0.0.1:{ENGINE_PORT}",
        "--listen", f"[::1]:{ENGINE_PORT}", "--connect", f"127.0.0.1:{ENGINE_PORT}",
    )  # fmt: skip
    _, controls = audit(netns, tmp_path, pid)
    for cid in ("OG-NET-01", "OG-NET-02", "OG-NET-03"):
        assert status(controls, cid) == "pass", controls[cid]
    assert status(controls, "OG-VUL-01") == "pass"  # version 0.20.0 read from /api/version


@pytest.mark.parametrize(
    "listen",
    [
        ["--listen", f"0.0.0.0:{ENGINE_PORT}"],
        ["--listen", f"[::]:{ENGINE_PORT}"],
        ["--listen", f"127.0.0.1:{ENGINE_PORT}", "--udp", "0.0.0.0:5353"],
        ["--listen", f"127.0.0.1:{ENGINE_PORT}", "--listen", f"{PEER_ADDRESS}:8080"],
    ],
    ids=["ipv4-any", "ipv6-any", "udp-any", "second-address"],
)
def test_non_loopback_listener_fails_og_net_01(
    netns: Namespace, ollama_exe: Path, tmp_path: Path, listen: list[str]
) -> None:
    pid = start_engine(netns, ollama_exe, *listen)
    code, controls = audit(netns, tmp_path, pid)
    assert code == 1
    assert status(controls, "OG-NET-01") == "fail", controls["OG-NET-01"]
    assert status(controls, "OG-NET-03") == "pass"


def test_other_process_on_engine_port_fails_og_net_02(
    netns: Namespace, ollama_exe: Path, tmp_path: Path
) -> None:
    pid = start_engine(netns, ollama_exe, "--listen", f"127.0.0.1:{ENGINE_PORT}")
    start_peer(netns, f"{PEER_ADDRESS}:{ENGINE_PORT}")  # a "proxy" re-exposing the port
    _, controls = audit(netns, tmp_path, pid)
    assert status(controls, "OG-NET-02") == "fail"
    assert status(controls, "OG-NET-01") == "pass"


@pytest.mark.parametrize("peer", [PEER_ADDRESS, f"[{PEER_ADDRESS6}]"], ids=["ipv4", "ipv6"])
def test_established_remote_connection_fails_og_net_03(
    netns: Namespace, ollama_exe: Path, tmp_path: Path, peer: str
) -> None:
    start_peer(netns, f"{peer}:{PEER_PORT}")
    pid = start_engine(
        netns,
        ollama_exe,
        "--listen",
        f"127.0.0.1:{ENGINE_PORT}",
        "--connect",
        f"{peer}:{PEER_PORT}",
    )
    code, controls = audit(netns, tmp_path, pid)
    assert code == 1
    assert status(controls, "OG-NET-03") == "fail"
    evidence = " ".join(e["value"] for e in controls["OG-NET-03"]["evidence"])
    assert peer.strip("[]") in evidence and "ESTABLISHED" in evidence
    assert status(controls, "OG-NET-01") == "pass"


def test_watch_catches_short_lived_connections(
    netns: Namespace, ollama_exe: Path, tmp_path: Path
) -> None:
    start_peer(netns)
    pid = start_engine(
        netns,
        ollama_exe,
        "--listen",
        f"127.0.0.1:{ENGINE_PORT}",
        "--pulse",
        f"{PEER_ADDRESS}:{PEER_PORT}",
    )
    _, controls = audit(netns, tmp_path, pid, "--watch", "3")
    assert status(controls, "OG-NET-03") == "fail"
    labels = {e["label"] for e in controls["OG-NET-03"]["evidence"]}
    assert "connection (watch)" in labels


def test_vulnerable_version_fails_og_vul_01(
    netns: Namespace, ollama_exe: Path, tmp_path: Path
) -> None:
    pid = start_engine(
        netns, ollama_exe, "--listen", f"127.0.0.1:{ENGINE_PORT}", "--version", "0.1.33"
    )
    _, controls = audit(netns, tmp_path, pid)
    assert status(controls, "OG-VUL-01") == "fail"
    assert "CVE-2024-37032" in controls["OG-VUL-01"]["summary"]


def test_discovery_by_process_name(netns: Namespace, ollama_exe: Path, tmp_path: Path) -> None:
    pid = start_engine(netns, ollama_exe, "--listen", f"127.0.0.1:{ENGINE_PORT}")
    out = tmp_path / "r.json"
    done = netns.run(
        [sys.executable, "-m", "auditor", "audit", "--engine", "ollama", "--output", str(out)]
    )
    assert done.returncode in (1, 3), done.stderr
    engine = json.loads(out.read_text())["engine"]
    # another stand-in on this machine may be older; ours must at least be a candidate
    assert engine["kind"] == "ollama"
    assert pid == engine["pid"] or pid in engine["other_candidates"]
    assert os.path.basename(engine["exe"]).startswith("python")

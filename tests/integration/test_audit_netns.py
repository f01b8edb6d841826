"""The audit of an engine in another network namespace, with real namespaces, nft and forwarders.

Three namespaces of the test's own stand for a machine: `host` (where `offgrid audit`
runs, as on a Docker or Podman host), `engine` (the container: the Ollama stand-in
inside) and `lan` (a client on the host's LAN address). veth links join engine and lan
to host; no packet reaches any network the test does not own, and the nft tables live
in the test's `host` namespace, never in the machine's ruleset. Every case proves the
layout real (a request through it reaches the engine) before the audit judges it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.netns import Namespace

pytestmark = pytest.mark.root

STANDINS = Path(__file__).resolve().parents[1] / "standins"
OLLAMA_STANDIN = STANDINS / "ollama_standin.py"
FORWARDER = Path(__file__).with_name("forwarder.py")
SYSTEM_PYTHON = "/usr/bin/python3"
PORT = 11434
HOST_LINK, CONTAINER = "10.231.0.1", "10.231.0.2"  # host <-> engine (a container bridge)
HOST_LAN, CLIENT = "198.18.60.1", "198.18.60.2"  # host <-> lan (the host's LAN address)
NAMES = ("og-ns-host", "og-ns-engine", "og-ns-lan")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _remove(name: str) -> None:
    if Path(f"/run/netns/{name}").exists():
        _ip("netns", "del", name)


@dataclass
class Machine:
    host: Namespace
    engine: Namespace
    lan: Namespace


def _link(a: tuple[str, str, str], b: tuple[str, str, str]) -> None:
    """A veth from (namespace, device, address) a to b, both ends up."""
    _ip("link", "add", a[1], "netns", a[0], "type", "veth", "peer", "name", b[1], "netns", b[0])
    for ns, end, addr in (a, b):
        _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", end)
        _ip("-n", ns, "link", "set", end, "up")


@contextlib.contextmanager
def machine(sealed: bool = False) -> Iterator[Machine]:
    """host, engine and lan namespaces; `sealed`: the engine's has nothing but loopback."""
    for name in NAMES:
        _remove(name)  # left over by a crashed run
    spaces = [Namespace(name) for name in NAMES]
    try:
        for name in NAMES:
            _ip("netns", "add", name)
            _ip("-n", name, "link", "set", "lo", "up")
        host, engine, lan = NAMES
        _link((host, "og-lan0", HOST_LAN), (lan, "og-lan1", CLIENT))
        if not sealed:
            _link((host, "og-br0", HOST_LINK), (engine, "og-eth0", CONTAINER))
            _ip("-n", engine, "route", "add", "default", "via", HOST_LINK)
        yield Machine(*spaces)
    finally:
        for space in spaces:
            space.stop_all()
        for name in NAMES:
            _remove(name)


@pytest.fixture(scope="module")
def ollama_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`ollama` -> the system python, so the stand-in's process is named like Ollama's."""
    directory = tmp_path_factory.mktemp("ollama-bin")
    exe = directory / "ollama"
    exe.symlink_to(SYSTEM_PYTHON)
    return exe


def start_engine(m: Machine, exe: Path, bind: str) -> int:
    """The Ollama stand-in serving OLLAMA_HOST=bind:11434 inside the engine namespace."""
    argv = ["env", f"OLLAMA_HOST={bind}:{PORT}", str(exe), str(OLLAMA_STANDIN), "serve"]
    proc = subprocess.Popen(
        m.engine.command(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    m.engine.processes.append(proc)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "listening on" in line, line
    return proc.pid  # nsenter and env exec, so this is the engine's own pid


def forward(space: Namespace, listen: str, to: str, join: int | None = None) -> int:
    extra = ["--join-netns", str(join)] if join else []
    proc = space.spawn([SYSTEM_PYTHON, str(FORWARDER), "--listen", listen, "--to", to, *extra])
    return proc.pid


def version_through(space: Namespace, address: str) -> str:
    """GET /api/version from inside `space`: the layout really reaches the engine."""
    code = (
        "import json, urllib.request; "
        f"print(json.load(urllib.request.urlopen('http://{address}/api/version', timeout=10))"
        "['version'])"
    )
    done = space.run([SYSTEM_PYTHON, "-c", code], timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def audit(
    space: Namespace, tmp_path: Path, pid: int, *extra: str, prefix: tuple[str, ...] = ()
) -> dict[str, dict]:
    out = tmp_path / "report.json"
    done = space.run(
        [*prefix, sys.executable, "-m", "auditor", "audit", "--engine", "ollama",
         "--engine-pid", str(pid), "--output", str(out), *extra]
    )  # fmt: skip
    assert done.returncode in (0, 1, 3), done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(out.read_text())
    controls = {c["id"]: c for c in report["controls"]}
    controls["namespaces"] = {"list": report["extra"]["namespaces"]}
    controls["engine"] = report["engine"]
    return controls


def nft(space: Namespace, script: str, tmp_path: Path) -> None:
    """Load `script` into the nftables ruleset of the test's own `space`."""
    rules = tmp_path / "rules.nft"
    rules.write_text(script)
    done = space.run(["nft", "-f", str(rules)])
    assert done.returncode == 0, done.stderr


@pytest.fixture
def docker_like() -> Iterator[Machine]:
    with machine() as m:
        yield m


def test_published_container_fails_naming_host_and_container_address(
    docker_like: Machine, ollama_exe: Path, tmp_path: Path
) -> None:
    m = docker_like
    pid = start_engine(m, ollama_exe, "0.0.0.0")
    forward(m.host, f"0.0.0.0:{PORT}", f"{CONTAINER}:{PORT}")
    assert version_through(m.lan, f"{HOST_LAN}:{PORT}")
    controls = audit(m.host, tmp_path, pid)
    net01 = controls["OG-NET-01"]
    assert net01["status"] == "fail", net01
    assert f"0.0.0.0:{PORT}" in net01["summary"] and CONTAINER in net01["summary"]
    assert "forwards to" in net01["summary"]
    # the engine's namespace is named in the report, read and not the audit's
    spaces = {n["role"]: n for n in controls["namespaces"]["list"]}
    assert spaces["engine"]["error"] is None and not spaces["engine"]["shares_audit_namespace"]
    assert spaces["engine"]["namespace"] != spaces["audit"]["namespace"]
    assert {i["name"] for i in spaces["engine"]["interfaces"]} == {"lo", "og-eth0"}
    assert controls["OG-NET-03"]["status"] == "pass", controls["OG-NET-03"]
    net06 = controls["OG-NET-06"]
    assert net06["status"] == "fail" and "og-eth0" in net06["summary"], net06


def test_podman_style_dnat_fails_naming_host_and_container_address(
    docker_like: Machine, ollama_exe: Path, tmp_path: Path
) -> None:
    m = docker_like
    pid = start_engine(m, ollama_exe, "0.0.0.0")
    m.host.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    nft(
        m.host,
        f"""table inet og_netavark {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr {HOST_LAN} tcp dport {PORT} counter dnat ip to {CONTAINER}:{PORT}
  }}
}}""",
        tmp_path,
    )
    assert version_through(m.lan, f"{HOST_LAN}:{PORT}")
    controls = audit(m.host, tmp_path, pid)
    net01 = controls["OG-NET-01"]
    assert net01["status"] == "fail", net01
    assert f"{HOST_LAN}:{PORT}" in net01["summary"] and CONTAINER in net01["summary"]
    assert "dnat" in net01["summary"]
    # nothing listens on the host's port: OG-NET-02 has nothing to name
    assert controls["OG-NET-02"]["status"] == "pass", controls["OG-NET-02"]


def test_engine_on_its_own_loopback_unpublished_passes(
    docker_like: Machine, ollama_exe: Path, tmp_path: Path
) -> None:
    m = docker_like
    pid = start_engine(m, ollama_exe, "127.0.0.1")
    version = version_through(m.engine, f"127.0.0.1:{PORT}")
    controls = audit(m.host, tmp_path, pid)
    # the engine answered the audit's probes on its own loopback, inside its namespace
    assert controls["engine"]["version"] == version and controls["engine"]["port"] == PORT
    for cid in ("OG-NET-01", "OG-NET-02", "OG-NET-03"):
        assert controls[cid]["status"] == "pass", controls[cid]
    assert "not published" in controls["OG-NET-01"]["summary"]
    # its namespace still has a veth with a default route out: not sealed
    assert controls["OG-NET-06"]["status"] == "fail", controls["OG-NET-06"]


def test_sealed_engine_passes_and_a_planted_route_out_fails(
    ollama_exe: Path, tmp_path: Path
) -> None:
    with machine(sealed=True) as m:
        pid = start_engine(m, ollama_exe, "127.0.0.1")
        # the systemd-socket-proxyd pattern: a host-side loopback listener joined to the engine
        forward(m.host, f"127.0.0.1:{PORT}", f"127.0.0.1:{PORT}", join=pid)
        assert version_through(m.host, f"127.0.0.1:{PORT}")
        controls = audit(m.host, tmp_path, pid)
        for cid in ("OG-NET-01", "OG-NET-02", "OG-NET-03", "OG-NET-06"):
            assert controls[cid]["status"] == "pass", controls[cid]
        evidence = {e["label"]: e["value"] for e in controls["OG-NET-06"]["evidence"]}
        assert "loopback" in evidence["interface lo"]
        # planted fault: a veth into the host namespace with a route through it
        _link((NAMES[0], "og-leak0", "10.232.0.1"), (NAMES[1], "og-leak1", "10.232.0.2"))
        controls = audit(m.host, tmp_path, pid)
        net06 = controls["OG-NET-06"]
        assert net06["status"] == "fail" and "og-leak1" in net06["summary"], net06
        evidence = {e["label"]: e["value"] for e in net06["evidence"]}
        assert "LEADS OUT" in evidence["interface og-leak1"]


def test_forwarder_joined_to_the_engine_namespace_on_every_address_fails(
    ollama_exe: Path, tmp_path: Path
) -> None:
    with machine(sealed=True) as m:
        pid = start_engine(m, ollama_exe, "127.0.0.1")
        forward(m.host, f"0.0.0.0:{PORT}", f"127.0.0.1:{PORT}", join=pid)
        assert version_through(m.lan, f"{HOST_LAN}:{PORT}")
        net01 = audit(m.host, tmp_path, pid)["OG-NET-01"]
        assert net01["status"] == "fail", net01
        assert f"0.0.0.0:{PORT}" in net01["summary"]
        assert "runs in the engine's namespace" in net01["summary"]


def test_namespace_unreadable_without_cap_sys_admin_is_an_error(
    docker_like: Machine, ollama_exe: Path, tmp_path: Path
) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    pid = start_engine(docker_like, ollama_exe, "127.0.0.1")
    # something else answers on the host's loopback port: it must not be taken for the engine
    squatter = STANDINS / "engine_sockets_standin.py"
    docker_like.host.spawn([SYSTEM_PYTHON, str(squatter), "serve", "--listen",
                            f"127.0.0.1:{PORT}", "--version", "9.9.9"])  # fmt: skip
    assert version_through(docker_like.host, f"127.0.0.1:{PORT}") == "9.9.9"
    controls = audit(
        docker_like.host, tmp_path, pid,
        prefix=("setpriv", "--inh-caps=-all", "--bounding-set=-sys_admin"),
    )  # fmt: skip
    for cid in ("OG-NET-01", "OG-NET-02", "OG-NET-03", "OG-NET-06"):
        assert controls[cid]["status"] == "error", controls[cid]
        assert "CAP_SYS_ADMIN" in controls[cid]["summary"], controls[cid]
    spaces = {n["role"]: n for n in controls["namespaces"]["list"]}
    assert "CAP_SYS_ADMIN" in spaces["engine"]["error"]
    # the squatter was not asked in the engine's place: no version, no CORS verdict from it
    assert controls["engine"]["version"] is None
    labels = {e["label"] for e in controls["OG-CFG-06"]["evidence"]}
    assert "CORS probe" not in labels, controls["OG-CFG-06"]


def test_watch_samples_the_engine_namespace(
    docker_like: Machine, ollama_exe: Path, tmp_path: Path
) -> None:
    """Short-lived connections out of the container are caught by --watch inside it."""
    m = docker_like
    sockets_standin = STANDINS / "engine_sockets_standin.py"
    m.host.spawn([SYSTEM_PYTHON, str(sockets_standin), "peer", "--listen", f"{HOST_LINK}:9443"])
    pid = m.engine.spawn(
        [str(ollama_exe), str(sockets_standin), "serve", "--listen", f"127.0.0.1:{PORT}",
         "--pulse", f"{HOST_LINK}:9443"]
    ).pid  # fmt: skip
    controls = audit(m.host, tmp_path, pid, "--watch", "3")
    net03 = controls["OG-NET-03"]
    assert net03["status"] == "fail", net03
    evidence = {e["label"]: e["value"] for e in net03["evidence"]}
    assert (
        "connection (watch)" in evidence and f"{HOST_LINK}:9443" in evidence["connection (watch)"]
    )
    assert "the engine's namespaces" in evidence["watch window"]

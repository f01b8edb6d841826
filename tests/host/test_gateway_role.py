"""roles/offgrid_gateway in front of the sealed llama.cpp engine on the booted offline
workstation, provisioned by site.yml with offgrid_seal_enabled and the gateway in team mode
(nginx and njs from the bundle's Debian packages), every address at its default: the engine
listens on 127.0.0.1:8080 inside its own network namespace, the seal's proxy serves only
/run/offgrid-seal/llamacpp.sock, and nginx holds 127.0.0.1:8080 and the team listener.

A "developer laptop" is a network namespace of its own, joined to the workstation by a veth
pair with a /30 of its own: no credential gets 401, a token issued with `offgrid gateway
token issue` streams a completion, /api/pull and /debug/pprof/ get 403 even with it, the
revoked token gets 401 after the next play, and a further play changes nothing. The in-host
audit passes every control, and the chain from nginx to the engine broken at either end
fails OG-NET-02.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.gateway_support import make_tls
from tests.host import network
from tests.host.bundle import TestBundle, build_test_bundle, sign_test_bundle, site_vars
from tests.host.inhost import audit, probe_target
from tests.host.workstation import SITE_PLAYBOOK, PlaybookRun, Workstation, booted

# Builds a bundle with nginx in it and provisions a fresh machine three times: beyond the
# default timeout (5 minutes on an idle 2-core machine).
pytestmark = [pytest.mark.host, pytest.mark.root, pytest.mark.timeout(2400)]
OFFGRID = Path(sys.executable).with_name("offgrid")
TEAM_PORT = 11443
ENGINE_PORT = 8080
MODEL = "smollm2-135m-instruct"
UNIT = "offgrid-llamacpp.service"
PROXY = "offgrid-seal-llamacpp"
SOCKET_PATH = "/run/offgrid-seal/llamacpp.sock"
NGINX_CONF = "/etc/offgrid-gateway/nginx.conf"
LAPTOP_PREFIX = "oglap-"
WS_SIDE, LAPTOP_SIDE = "laptop0", "eth0"


@dataclass(frozen=True)
class Laptop:
    """A network namespace of its own on a veth pair into the workstation's namespace."""

    netns: str
    ws_ip: str  # the workstation's address on the laptop's link
    ip: str


def _netns_owner_dead(name: str) -> bool:
    pid = name.removeprefix(LAPTOP_PREFIX)
    return pid.isdigit() and not Path(f"/proc/{pid}").exists()


def _remove_laptop(name: str) -> None:
    subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)


def _leftover_laptops() -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    names = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
    return [n for n in names if n.startswith(LAPTOP_PREFIX) and _netns_owner_dead(n)]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def laptop_on(ws: Workstation) -> Iterator[Laptop]:
    """The laptop's namespace and its link (a /30 that routes nowhere else); removed on exit,
    and leftovers of a crashed run (their owner process gone) removed first."""
    for name in _leftover_laptops():
        _remove_laptop(name)
    name = f"{LAPTOP_PREFIX}{os.getpid()}"
    _remove_laptop(name)
    planned = network.plan(f"{ws.name}-laptop")  # a free /30; only its addresses are used
    laptop = Laptop(netns=name, ws_ip=planned.host_ip, ip=planned.guest_ip)
    try:
        _ip("netns", "add", name)
        # both ends are created inside their namespaces: nothing appears in the host's
        _ip("link", "add", WS_SIDE, "netns", ws.netns, "type", "veth",
            "peer", "name", LAPTOP_SIDE, "netns", name)  # fmt: skip
        _ip("-n", ws.netns, "addr", "add", f"{laptop.ws_ip}/30", "dev", WS_SIDE)
        _ip("-n", ws.netns, "link", "set", WS_SIDE, "up")
        _ip("-n", name, "addr", "add", f"{laptop.ip}/30", "dev", LAPTOP_SIDE)
        _ip("-n", name, "link", "set", LAPTOP_SIDE, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield laptop
    finally:
        _remove_laptop(name)  # takes the veth pair with it


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> TestBundle:
    built = build_test_bundle(tmp_path_factory.mktemp("gateway-bundle") / "bundle")
    done = subprocess.run(
        [str(OFFGRID), "bundle", "add-debs", str(built.path), "nginx", "libnginx-mod-http-js"],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    sign_test_bundle(built)
    return built


def _issue(store: Path, user: str) -> str:
    done = subprocess.run(
        [str(OFFGRID), "gateway", "token", "issue", "--store", str(store), "--user", user],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout.strip()


@pytest.fixture(scope="module")
def setup(bundle: TestBundle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    creds = tmp_path_factory.mktemp("gateway-creds")
    with booted(f"ogw-{os.getpid()}") as ws, laptop_on(ws) as laptop:
        cert, key = make_tls(creds, ip=laptop.ws_ip)
        store = creds / "tokens.json"
        tokens = {user: _issue(store, user) for user in ("alice", "bob")}
        variables = {
            **site_vars(bundle, "llamacpp"),
            "offgrid_auditor_egress_probe": probe_target(ws),
            "offgrid_seal_enabled": True,
            "offgrid_gateway_enabled": True,
            "offgrid_gateway_team_enabled": True,
            "offgrid_gateway_tls_certificate": str(cert),
            "offgrid_gateway_tls_key": str(key),
            "offgrid_gateway_token_store": str(store),
        }
        first = ws.playbook(SITE_PLAYBOOK, extra_vars=variables)
        yield {"ws": ws, "laptop": laptop, "vars": variables, "tokens": tokens, "store": store,
               "ca": cert, "first": first}  # fmt: skip


def _from_laptop(
    setup: dict[str, Any], path: str, token: str | None, body: str | None = None
) -> tuple[int, str]:
    """curl from the laptop's namespace to the team listener: (status, body)."""
    laptop: Laptop = setup["laptop"]
    command = ["ip", "netns", "exec", laptop.netns, "curl", "-sS", "-N", "--noproxy", "*",
               "--max-time", "120", "--cacert", str(setup["ca"]),
               "-w", "\n%{http_code}"]  # fmt: skip
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    if body is not None:
        command += ["-H", "Content-Type: application/json", "--data-binary", body]
    command.append(f"https://{laptop.ws_ip}:{TEAM_PORT}{path}")
    done = subprocess.run(command, capture_output=True, text=True, timeout=150, check=False)
    assert done.returncode == 0, done.stderr
    text, _, status = done.stdout.rpartition("\n")
    return int(status), text


def _laptop_connects(setup: dict[str, Any], host: str, port: int) -> bool:
    code = (
        "import socket, sys\n"
        "try:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)\n"
        "except OSError:\n    sys.exit(1)\n"
    )
    laptop: Laptop = setup["laptop"]
    done = subprocess.run(
        ["ip", "netns", "exec", laptop.netns, sys.executable, "-c", code, host, str(port)],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    return done.returncode == 0


def _pid(ws: Workstation, unit: str) -> int:
    pid = int(ws.run(f"systemctl show -p MainPID --value {unit}").stdout.strip())
    assert pid > 0, unit
    return pid


def test_first_run_seals_the_engine_behind_the_gateway(setup: dict[str, Any]) -> None:
    ws: Workstation = setup["ws"]
    first: PlaybookRun = setup["first"]
    assert "offgrid-gateway.service exposure" in first.output
    assert "Prove the engine answers through the unix socket" in first.output
    assert ws.run("systemctl is-active offgrid-gateway.service").stdout.strip() == "active"
    uids = set(ws.run("ps -o uid= -C nginx").stdout.split())
    assert uids == {ws.run("id -u offgrid-gateway").stdout.strip()}  # master and workers


def test_debian_nginx_never_started(setup: dict[str, Any]) -> None:
    """Masked by offgrid_debs before its package was installed: its postinst's start was
    refused, so the default site never listened on port 80."""
    ws: Workstation = setup["ws"]
    assert ws.run("systemctl is-enabled nginx.service", check=False).stdout.strip() == "masked"
    assert "nginx" in ws.run("dpkg-query -W -f '${Package} ${Status}\\n' nginx").stdout
    shown = ws.run(
        "systemctl show nginx.service -p ActiveEnterTimestampMonotonic "
        "-p InactiveExitTimestampMonotonic -p ExecMainPID"
    ).stdout.split()
    assert sorted(shown) == sorted([
        "ActiveEnterTimestampMonotonic=0", "InactiveExitTimestampMonotonic=0", "ExecMainPID=0"
    ])  # fmt: skip
    journal = ws.run("journalctl -b --no-pager -o cat -u nginx.service").stdout
    assert "Started" not in journal and "Starting" not in journal, journal
    assert ws.run("ss -Htln 'sport = :80'").stdout.strip() == ""


def test_engine_namespace_holds_only_loopback_and_the_sink(setup: dict[str, Any]) -> None:
    ws: Workstation = setup["ws"]
    engine = _pid(ws, UNIT)
    assert ws.run(f"readlink /proc/{engine}/ns/net").stdout != ws.run(
        "readlink /proc/1/ns/net").stdout  # fmt: skip
    lines = ws.run(f"nsenter --target={engine} --net ip -oneline link show").stdout.splitlines()
    names = sorted(line.split(": ", 2)[1].split("@", 1)[0] for line in lines)
    assert names == ["lo", "offgrid-sink0", "offgrid-sink1"]
    inside = ws.run(f"nsenter --target={engine} --net ss -Htlnp 'sport = :{ENGINE_PORT}'").stdout
    assert [line.split()[3] for line in inside.splitlines()] == [f"127.0.0.1:{ENGINE_PORT}"]


def test_the_engine_is_reached_only_through_the_gateway(setup: dict[str, Any]) -> None:
    ws: Workstation = setup["ws"]
    laptop: Laptop = setup["laptop"]
    # the host namespace: nginx alone holds the engine's usual port, and answers as the gateway
    listeners = ws.run(f"ss -Htlnp 'sport = :{ENGINE_PORT}'").stdout
    assert [line.split()[3] for line in listeners.splitlines()] == [f"127.0.0.1:{ENGINE_PORT}"]
    assert '("nginx",' in listeners and "systemd" not in listeners
    headers = ws.run(f"curl -sS -D - -o /dev/null http://127.0.0.1:{ENGINE_PORT}/v1/models").stdout
    assert " 200" in headers.splitlines()[0] and "X-Offgrid-Gateway: 1" in headers
    # a route llama.cpp serves but the gateway does not: not the engine answering
    health = f"curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{ENGINE_PORT}/health"
    assert ws.run(health).stdout == "403"
    # the proxy's only socket is the unix one, for the gateway's user alone
    listen = ws.run(f"systemctl show -p Listen --value {PROXY}.socket").stdout.split()
    assert listen == [f"{SOCKET_PATH}", "(Stream)"]
    mode = ws.run(f"stat -c '%a %U %G' {SOCKET_PATH}").stdout.split()
    assert mode == ["660", "root", "offgrid-engine-clients"]
    members = ws.run("getent group offgrid-engine-clients").stdout.strip().split(":")[3]
    assert members == "offgrid-gateway"
    # from the laptop: the team listener, and nothing on the engine's port
    assert _laptop_connects(setup, laptop.ws_ip, TEAM_PORT)
    for host in (laptop.ws_ip, ws.guest_ip):
        assert not _laptop_connects(setup, host, ENGINE_PORT), host


def test_the_developer_laptop_needs_a_credential(setup: dict[str, Any]) -> None:
    assert _from_laptop(setup, "/v1/models", None)[0] == 401
    assert _from_laptop(setup, "/v1/models", "ogk_000000000000_" + "A" * 43)[0] == 401


def test_a_credential_streams_a_completion(setup: dict[str, Any]) -> None:
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}],
                       "max_tokens": 16, "stream": True})  # fmt: skip
    status, text = _from_laptop(setup, "/v1/chat/completions", setup["tokens"]["alice"], body)
    assert status == 200, text
    assert text.count("data: ") > 2 and text.rstrip().endswith("data: [DONE]")


def test_management_and_debug_routes_get_403_with_a_credential(setup: dict[str, Any]) -> None:
    alice = setup["tokens"]["alice"]
    assert _from_laptop(setup, "/api/pull", alice, '{"model": "x"}')[0] == 403
    assert _from_laptop(setup, "/debug/pprof/", alice)[0] == 403


def test_the_in_host_audit_passes_every_control(setup: dict[str, Any]) -> None:
    run = audit(setup["ws"])
    assert run.not_passing() == {}
    for cid in ("OG-NET-01", "OG-NET-02", "OG-NET-06", "OG-GW-01", "OG-GW-02", "OG-GW-03",
                "OG-GW-04", "OG-GW-05", "OG-GW-06", "OG-GW-07"):  # fmt: skip
        assert run.statuses[cid] == "pass", (cid, run.summaries[cid])
    assert "gateway" in run.summaries["OG-NET-02"]


@contextlib.contextmanager
def _changed(ws: Workstation, path: str, old: str, new: str, apply: str) -> Iterator[None]:
    """`path` with `old` replaced by `new` while the block runs, applied by `apply`; the
    original file (and state) is restored by the same command even when the block fails."""
    backup = f"{path}.offgrid-test"
    ws.run(f"cp -p {path} {backup} && sed -i {shlex.quote(f's|{old}|{new}|')} {path}")
    try:
        assert new in ws.run(f"cat {path}").stdout
        ws.run(apply)
        yield
    finally:
        ws.run(f"mv -f {backup} {path} && {apply}")


def test_nginx_upstream_pointed_elsewhere_fails_og_net_02(setup: dict[str, Any]) -> None:
    ws: Workstation = setup["ws"]
    elsewhere = "unix:/run/offgrid-gateway/elsewhere.sock"
    with _changed(ws, NGINX_CONF, f"unix:{SOCKET_PATH}", elsewhere,
                  "systemctl reload offgrid-gateway.service"):  # fmt: skip
        run = audit(ws)
        assert run.statuses["OG-NET-02"] == "fail", run.summaries["OG-NET-02"]
        assert run.statuses["OG-GW-06"] != "pass", run.summaries["OG-GW-06"]


def test_the_proxy_pointed_elsewhere_fails_og_net_02(setup: dict[str, Any]) -> None:
    ws: Workstation = setup["ws"]
    unit = f"/etc/systemd/system/{PROXY}.service"
    restart = f"systemctl daemon-reload && systemctl restart {PROXY}.service"
    with _changed(ws, unit, f"127.0.0.1:{ENGINE_PORT}$", "127.0.0.1:9", restart):
        run = audit(ws)
        assert run.statuses["OG-NET-02"] == "fail", run.summaries["OG-NET-02"]


def test_a_revoked_credential_gets_401_after_the_play_and_a_rerun_changes_nothing(
    setup: dict[str, Any],
) -> None:
    ws: Workstation = setup["ws"]
    subprocess.run(
        [str(OFFGRID), "gateway", "token", "revoke", "--store", str(setup["store"]),
         "--user", "bob"], check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    assert _from_laptop(setup, "/v1/models", setup["tokens"]["bob"])[0] == 200
    ws.playbook(SITE_PLAYBOOK, extra_vars=setup["vars"])
    assert _from_laptop(setup, "/v1/models", setup["tokens"]["bob"])[0] == 401
    assert _from_laptop(setup, "/v1/models", setup["tokens"]["alice"])[0] == 200
    again = ws.playbook(SITE_PLAYBOOK, extra_vars=setup["vars"])
    assert again.stats[ws.name].changed == 0, again.changed_tasks()


def test_switching_the_gateway_off_gives_the_address_back_to_the_seal(
    setup: dict[str, Any],
) -> None:
    """The last test of the module: the gateway is switched off. Its unit and configuration
    go, the seal's proxy holds the engine's loopback port again and the engine answers there
    (no gateway header, no 403), the audit passes with OG-GW not applicable, and a re-run
    changes nothing."""
    ws: Workstation = setup["ws"]
    variables = {**setup["vars"], "offgrid_gateway_enabled": False}
    ws.playbook(SITE_PLAYBOOK, extra_vars=variables)
    assert ws.run("systemctl is-active offgrid-gateway.service", check=False).stdout.strip() in (
        "inactive", "unknown"
    )  # fmt: skip
    gone = "test ! -e /etc/systemd/system/offgrid-gateway.service && test ! -e /etc/offgrid-gateway"
    ws.run(gone)
    listeners = ws.run(f"ss -Htlnp 'sport = :{ENGINE_PORT}'").stdout
    assert [line.split()[3] for line in listeners.splitlines()] == [f"127.0.0.1:{ENGINE_PORT}"]
    assert '("systemd",' in listeners and "nginx" not in listeners
    headers = ws.run(f"curl -sS -D - -o /dev/null http://127.0.0.1:{ENGINE_PORT}/v1/models").stdout
    assert " 200" in headers.splitlines()[0] and "X-Offgrid-Gateway" not in headers
    # the route the gateway refused (403) is the engine's to answer again
    health = f"curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{ENGINE_PORT}/health"
    assert ws.run(health).stdout != "403"
    assert not _laptop_connects(setup, setup["laptop"].ws_ip, TEAM_PORT)
    run = audit(ws)
    assert run.not_passing() == {}
    assert run.statuses["OG-GW-01"] == "not_applicable", run.summaries["OG-GW-01"]
    for cid in ("OG-NET-01", "OG-NET-02", "OG-NET-06"):
        assert run.statuses[cid] == "pass", (cid, run.summaries[cid])
    again = ws.playbook(SITE_PLAYBOOK, extra_vars=variables)
    assert again.stats[ws.name].changed == 0, again.changed_tasks()

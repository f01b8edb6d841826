"""The sealed engine (role offgrid_seal) on a booted offline workstation of its own.

The engine is the Ollama release stand-in playing a release that starts llama-server runner
children (as Ollama does since 0.30.0), provisioned by playbooks/site.yml with
offgrid_seal_enabled=true: the engine unit runs with PrivateNetwork=yes, a sink sets up its
namespace, and the host reaches it only through systemd-socket-proxyd on
/run/offgrid-seal/ollama.sock and 127.0.0.1:11434. The bundle also carries ulogd2 and
ulogd2-json, and offgrid_seal_recording_enabled runs a recorder inside that namespace. The
tests run in file order on one machine: what the play built, what the engine can and cannot
reach, idempotence, the in-host audit, the attempts out recorded night by night, and the
seal broken on purpose last.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.host.bundle import TestBundle, build_test_bundle, site_vars
from tests.host.inhost import audit, probe_listener, probe_target
from tests.host.test_egress_continuity import _with_recorder
from tests.host.workstation import SITE_PLAYBOOK, PlaybookRun, Workstation, booted

pytestmark = [pytest.mark.host, pytest.mark.root]

PORT = 11434
UNIT = "ollama.service"
SINK_UNIT = "offgrid-seal-ollama-sink.service"
PROXY = "offgrid-seal-ollama"
SOCKET_PATH = "/run/offgrid-seal/ollama.sock"
SINK, PEER = "offgrid-sink0", "offgrid-sink1"
BREAK_DROPIN = f"/etc/systemd/system/{UNIT}.d/zz-unseal.conf"
RUNNER_RELEASE = "0.31.0"
CONNECT = "/run/offgrid-test-connect.py"  # readable by the engine's user
WIDEN_DROPIN = f"/etc/systemd/system/{PROXY}.socket.d/zz-widen.conf"
RECORDER = f"{PROXY}-recorder.service"
SEAL_LOG = "/var/log/offgrid-seal/ollama.json"
HISTORY = "/root/seal-history"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> TestBundle:
    directory = tmp_path_factory.mktemp("seal-bundle")
    built = build_test_bundle(directory / "plain", engine="ollama", ollama_version=RUNNER_RELEASE)
    return _with_recorder(built, directory / "recorder")


@pytest.fixture(scope="module")
def machine() -> Iterator[Workstation]:
    with booted(f"ogs-{os.getpid()}") as ws:
        yield ws


def _vars(ws: Workstation, bundle: TestBundle) -> dict[str, object]:
    return {
        **site_vars(bundle, "ollama"),
        "offgrid_auditor_egress_probe": probe_target(ws),
        "offgrid_seal_enabled": True,
        "offgrid_seal_recording_enabled": True,
    }


@pytest.fixture(scope="module")
def sealed(machine: Workstation, bundle: TestBundle) -> PlaybookRun:
    return machine.playbook(SITE_PLAYBOOK, extra_vars=_vars(machine, bundle))


def _pid(ws: Workstation, unit: str = UNIT) -> int:
    pid = int(ws.run(f"systemctl show -p MainPID --value {unit}").stdout.strip())
    assert pid > 0, unit
    return pid


def _inside(ws: Workstation, command: str, pid: int | None = None) -> str:
    return ws.run(f"nsenter --target={pid or _pid(ws)} --net {command}").stdout


def _links(ws: Workstation) -> list[str]:
    lines = _inside(ws, "ip -oneline link show").splitlines()
    return sorted(line.split(": ", 2)[1].split("@", 1)[0] for line in lines)


def _counter(ws: Workstation) -> int:
    table = _inside(ws, "nft --json list table inet offgrid_seal")
    rules = [i["rule"] for i in json.loads(table)["nftables"] if "rule" in i]
    counts = [e["counter"]["packets"] for r in rules for e in r["expr"] if "counter" in e]
    assert len(counts) == 1, rules
    return int(counts[0])


def _connect_as_engine(ws: Workstation, host: str, port: int) -> str:
    """A connect() from inside the engine's namespace as its user: the errno name, or
    "connected"."""
    code = (
        "import errno, socket, sys\n"
        "s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)\n"
        "s.settimeout(5)\n"
        "try:\n"
        "    s.connect((sys.argv[1], int(sys.argv[2]))); print('connected')\n"
        "except OSError as e:\n"
        "    print(errno.errorcode.get(e.errno, str(e)))\n"
    )
    ws.run(f"cat > {CONNECT} <<'EOF'\n{code}EOF\nchmod 0644 {CONNECT}")
    return _inside(
        ws, f"setpriv --reuid=ollama --regid=ollama --clear-groups python3 {CONNECT} {host} {port}"
    ).strip()


def _get(ws: Workstation, how: str, route: str = "/api/version") -> dict[str, object]:
    reply = ws.run(f"curl -sf --max-time 30 {how} http://127.0.0.1:{PORT}{route}").stdout
    return dict(json.loads(reply))


def test_first_run_seals_the_engine(sealed: PlaybookRun) -> None:
    assert sealed.rc == 0
    assert "offgrid_seal : Give the engine unit a private network namespace in seal.conf | " \
        "OG-NET-06" in sealed.changed_tasks()  # fmt: skip


def test_engine_namespace_holds_only_loopback_and_the_sink(
    machine: Workstation, sealed: PlaybookRun
) -> None:
    assert machine.run(f"systemctl show -p PrivateNetwork --value {UNIT}").stdout.strip() == "yes"
    pid = _pid(machine)
    assert (
        machine.run(f"readlink /proc/{pid}/ns/net").stdout
        != machine.run("readlink /proc/1/ns/net").stdout
    )
    assert _links(machine) == sorted(["lo", SINK, PEER])
    devices = machine.run(f"tail -n +3 /proc/{pid}/net/dev").stdout.split()
    assert sorted(d.rstrip(":") for d in devices if d.endswith(":")) == sorted(["lo", SINK, PEER])
    # the sink's peer is in the same namespace (no link-netnsid) and down
    links = _inside(machine, "ip -details -oneline link show")
    assert "link-netns" not in links
    assert f"{SINK}@{PEER}:" in links and f"{PEER}@{SINK}:" in links
    assert "state DOWN" in _inside(machine, f"ip -oneline link show dev {PEER}")


def test_a_connect_out_from_inside_is_refused_and_counted(
    machine: Workstation, sealed: PlaybookRun
) -> None:
    before = _counter(machine)
    assert _connect_as_engine(machine, machine.host_ip, 22) == "ECONNREFUSED"
    assert _connect_as_engine(machine, "2001:db8::7", 443) == "ECONNREFUSED"
    assert _counter(machine) > before
    # the same connect from the host's namespace reaches the controller: the refusal is the seal's
    assert machine.port_open_from_host(22)


def test_without_the_sink_a_connect_fails_with_no_route_unseen(
    machine: Workstation, sealed: PlaybookRun
) -> None:
    """What the sink is for: in a namespace with only lo (a fresh one, the engine's is left
    alone), the same connect never reaches netfilter."""
    bare = f"unshare --net sh -c 'ip link set lo up; python3 {CONNECT} {{}} 22'"
    _connect_as_engine(machine, machine.host_ip, 22)  # writes the script
    assert machine.run(bare.format(machine.host_ip)).stdout.strip() == "ENETUNREACH"


def test_proxy_answers_on_the_unix_socket_and_the_loopback_port(
    machine: Workstation, sealed: PlaybookRun
) -> None:
    assert _get(machine, f"--unix-socket {SOCKET_PATH}")["version"]
    assert _get(machine, "")["version"]
    mode = machine.run(f"stat -c '%a %U %G' {SOCKET_PATH}").stdout.split()
    assert mode == ["660", "root", "offgrid-engine-clients"]
    # the host side: systemd holds 127.0.0.1:11434, the proxy runs in the engine's namespace
    listeners = machine.run(f"ss -Htlnp 'sport = :{PORT}'").stdout
    assert [line.split()[3] for line in listeners.splitlines()] == [f"127.0.0.1:{PORT}"]
    assert '("systemd",pid=1,' in listeners and '("systemd-socket-"' in listeners
    proxy = _pid(machine, f"{PROXY}.service")
    assert (
        machine.run(f"readlink /proc/{proxy}/ns/net").stdout
        == machine.run(f"readlink /proc/{_pid(machine)}/ns/net").stdout
    )
    assert not machine.port_open_from_host(PORT)


def test_second_run_changes_nothing(
    machine: Workstation, bundle: TestBundle, sealed: PlaybookRun
) -> None:
    again = machine.playbook(SITE_PLAYBOOK, extra_vars=_vars(machine, bundle))
    assert again.stats[machine.name].changed == 0, again.changed_tasks()
    assert _links(machine) == sorted(["lo", SINK, PEER])


def test_in_host_audit_passes_every_control(machine: Workstation, sealed: PlaybookRun) -> None:
    run = audit(machine)
    # the connects out of the tests above are on the namespace's record, and only there
    net05 = run.not_passing().pop("OG-NET-05", "")
    assert net05.startswith("fail: ") and f"{machine.host_ip}:22" in net05, net05
    assert "2001:db8::7:443" in net05, net05
    assert {k: v for k, v in run.not_passing().items() if k != "OG-NET-05"} == {}
    assert run.statuses["OG-NET-06"] == "pass"


def _night(ws: Workstation) -> dict[str, Any]:
    """An in-host audit with a report history of its own: the previous one is its baseline."""
    audit(ws, "--history", HISTORY)
    report = json.loads(ws.run("cat /root/audit.json").stdout)
    return {c["id"]: c for c in report["controls"]}


def test_attempts_out_are_recorded_inside_the_namespace_night_by_night(
    machine: Workstation, sealed: PlaybookRun
) -> None:
    recorder, engine = _pid(machine, RECORDER), _pid(machine)
    space = machine.run(f"readlink /proc/{recorder}/ns/net").stdout
    assert space == machine.run(f"readlink /proc/{engine}/ns/net").stdout
    assert space != machine.run("readlink /proc/1/ns/net").stdout
    status = machine.run(f"cat /proc/{recorder}/status").stdout
    assert f"Uid:\t{machine.run('id -u ulog').stdout.strip()}\t" in status
    assert "CapEff:\t0000000000001000" in status, status  # CAP_NET_ADMIN only
    machine.run(f"rm -rf {HISTORY}")
    first = _night(machine)
    assert first["OG-NET-07"]["status"] == "not_applicable", first["OG-NET-07"]
    for port in (4411, 4412):
        assert _connect_as_engine(machine, machine.host_ip, port) == "ECONNREFUSED"
    second = _night(machine)
    net05 = second["OG-NET-05"]
    assert net05["status"] == "fail" and "since the previous audit" in net05["summary"]
    listed = [e["value"] for e in net05["evidence"] if e["label"] == "attempt"]
    assert len(listed) == 2, listed
    for port, line in zip((4411, 4412), listed, strict=True):
        assert line[:4].isdigit() and f"tcp {machine.host_ip}:{port} " in line, line
        assert "engine's namespace" in line, line
    assert second["OG-NET-07"]["status"] == "pass", second["OG-NET-07"]
    machine.run(f"systemctl restart {RECORDER}")
    machine.run(
        f"for i in $(seq 40); do grep -q '^ *7412 ' /proc/$(systemctl show -p MainPID --value "
        f"{RECORDER})/net/netfilter/nfnetlink_log && exit 0; sleep 0.5; done; exit 1",
        timeout=60,
    )
    third = _night(machine)
    net07 = third["OG-NET-07"]
    assert net07["status"] == "fail", net07
    assert net07["summary"].startswith("recording restarted"), net07
    assert "recorder restarted at" in net07["summary"], net07
    assert third["OG-NET-05"]["status"] == "pass", third["OG-NET-05"]
    # the nightly unit, in its sandbox, reads the same record inside the engine's namespace
    with probe_listener(machine):
        machine.run("systemctl start offgrid-audit.service", timeout=300)
    nightly = json.loads(machine.run("cat /var/lib/offgrid/reports/latest.json").stdout)
    net05 = next(c for c in nightly["controls"] if c["id"] == "OG-NET-05")
    assert net05["status"] == "fail", net05  # its first night: the whole log is judged
    assert "from the engine's network namespace" in net05["summary"], net05
    assert f"{machine.host_ip}:4411" in net05["summary"], net05


def test_a_proxy_listening_beyond_loopback_fails_og_net_01(
    machine: Workstation, sealed: PlaybookRun
) -> None:
    machine.run(
        f"mkdir -p {os.path.dirname(WIDEN_DROPIN)} && printf '[Socket]\\nListenStream=\\n"
        f"ListenStream={SOCKET_PATH}\\nListenStream=0.0.0.0:{PORT}\\n' > {WIDEN_DROPIN}"
    )
    try:
        machine.run(
            f"systemctl daemon-reload && systemctl stop {PROXY}.service && "
            f"systemctl restart {PROXY}.socket"
        )
        assert machine.port_open_from_host(PORT)  # the widening is real
        run = audit(machine)
        assert run.statuses["OG-NET-01"] == "fail", run.summaries["OG-NET-01"]
    finally:
        machine.run(
            f"rm -f {WIDEN_DROPIN} && systemctl daemon-reload && systemctl stop {PROXY}.service"
            f" && systemctl restart {PROXY}.socket"
        )
    assert not machine.port_open_from_host(PORT)


def _plant_model(ws: Workstation) -> str:
    """A model in the engine's store (one layer of test bytes): the stand-in starts a runner
    for it. Planted after the audits that need a store holding only pinned models."""
    data = b"offgrid test: a model layer for the runner test\n"
    digest = hashlib.sha256(data).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "layers": [{"mediaType": "application/vnd.ollama.image.model",
                    "digest": f"sha256:{digest}", "size": len(data)}],
    }  # fmt: skip
    store = "/usr/share/ollama/.ollama/models"
    target = f"{store}/manifests/registry.ollama.ai/library/sealtest/latest"
    ws.run(
        f"mkdir -p {os.path.dirname(target)} && printf '%s' '{json.dumps(manifest)}' > {target}"
        f" && printf '%s' '{data.decode().strip()}' > {store}/blobs/sha256-{digest}"
        f" && chown -R ollama:ollama {store}"
    )
    return "sealtest:latest"


def test_runners_start_and_serve_inside_the_namespace(
    machine: Workstation, sealed: PlaybookRun
) -> None:
    name = _plant_model(machine)
    # an empty prompt loads the model: the engine starts its runner and waits for its /health
    body = json.dumps({"model": name, "prompt": "", "stream": False})
    reply = machine.run(
        f"curl -sf --max-time 120 -d '{body}' http://127.0.0.1:{PORT}/api/generate"
    ).stdout
    assert json.loads(reply)["done"] is True
    engine = _pid(machine)
    runners = [int(p) for p in machine.run("pgrep -f lib/ollama/llama-server").stdout.split()]
    assert len(runners) == 1
    # a process of the engine's unit (the launcher's server child starts it)
    assert f"/{UNIT}" in machine.run(f"cat /proc/{runners[0]}/cgroup").stdout
    assert (
        machine.run(f"readlink /proc/{runners[0]}/ns/net").stdout
        == machine.run(f"readlink /proc/{engine}/ns/net").stdout
    )
    inside = _inside(machine, f"ss -Htlnp 'sport != :{PORT}'")
    assert "127.0.0.1:" in inside and f"pid={runners[0]}," in inside
    ps = _get(machine, "", "/api/ps")
    assert [m["name"] for m in ps["models"]] == [name]  # type: ignore[attr-defined]
    # the audit reads the runner's listener in the engine's namespace as an expected one
    # (OG-RUN-02 is left out: the stand-in's launcher makes the runner a grandchild of the
    # unit's main process, which OG-RUN-02 fails whether or not the engine is sealed)
    run = audit(machine)
    assert run.statuses["OG-RUN-01"] == "pass", run.summaries["OG-RUN-01"]


def test_removing_the_seal_fails_og_net_06(machine: Workstation, sealed: PlaybookRun) -> None:
    """A drop-in that turns PrivateNetwork off, and the proxy's sockets stopped so the engine
    can bind the host's loopback: it serves as before, unsealed, and the audit says so."""
    machine.run(f"printf '[Service]\\nPrivateNetwork=no\\n' > {BREAK_DROPIN}")
    try:
        machine.run(
            f"systemctl daemon-reload && systemctl stop {PROXY}.service {PROXY}.socket && "
            f"systemctl restart {SINK_UNIT} {UNIT}"
        )
        pid = _pid(machine)
        assert (
            machine.run(f"readlink /proc/{pid}/ns/net").stdout
            == machine.run("readlink /proc/1/ns/net").stdout
        )
        machine.run(
            f"for i in $(seq 60); do curl -sf -o /dev/null http://127.0.0.1:{PORT}/api/version"
            " && exit 0; sleep 0.5; done; exit 1", timeout=60,
        )  # fmt: skip
        run = audit(machine)
        assert run.statuses["OG-NET-06"] == "fail", run.summaries["OG-NET-06"]
    finally:
        machine.run(
            f"rm -f {BREAK_DROPIN} && systemctl daemon-reload && systemctl stop {UNIT} "
            f"{SINK_UNIT} && systemctl start {UNIT} {PROXY}.socket"
        )

"""OG-NET-05 against the real kernel recording: nft `log group` + ulogd2 in a test namespace.

The engine stand-in runs as an unprivileged uid; the namespace's rule hands every packet
that uid sends outside loopback to NFLOG group GROUP, then rejects it, as role
offgrid_egress does (matched by address here: the probe's peer is an address of the
namespace itself, which the kernel routes over `lo`). ulogd2 (Debian's, with its JSON
output) runs inside the namespace and writes the log the audit reads. Every packet goes
to an address on the namespace's own link.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.netns import (
    PEER_ADDRESS,
    ULOGD_PLUGINS,
    Namespace,
    network_namespace,
    ulogd_conf,
)

pytestmark = pytest.mark.root

STANDIN = Path(__file__).resolve().parents[1] / "standins" / "engine_sockets_standin.py"
SERVICE_UID = 64124
GROUP = 7411
PEER = f"{PEER_ADDRESS}:9443"

RULESET = f"""\
table inet offgrid_egress {{
  chain output {{
    type filter hook output priority 0; policy accept;
    meta skuid {SERVICE_UID} ip daddr 127.0.0.0/8 accept
    meta skuid {SERVICE_UID} ip6 daddr ::1 accept
    meta skuid {SERVICE_UID} log prefix "offgrid-egress " group {GROUP}
    meta skuid {SERVICE_UID} counter reject comment "OG-NET-04 engine egress"
  }}
}}
"""


# 20 children of the engine's uid, each living ~20 ms around one attempt
ATTEMPTS = """\
import os, socket, sys, time
targets = [("198.18.77.50", 443, "tcp"), ("198.18.77.51", 53, "udp"),
           ("2001:db8:77::50", 443, "tcp"), ("2001:db8:77::51", 53, "udp")]
for i in range(20):
    host, port, proto = targets[i % 4]
    if os.fork() == 0:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        with socket.socket(family, kind) as s:
            try:
                s.connect((host, port)) if proto == "tcp" else s.sendto(b"x", (host, port))
            except OSError:
                pass
            time.sleep(0.02)
        os._exit(0)
    os.wait()
"""


def _listening(ns: Namespace) -> bool:
    table = ns.run(["cat", "/proc/net/netfilter/nfnetlink_log"]).stdout
    return any(line.split()[:1] == [str(GROUP)] for line in table.splitlines())


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[Namespace, Path]]:
    if shutil.which("ulogd") is None or not (ULOGD_PLUGINS / "ulogd_output_JSON.so").exists():
        pytest.skip("ulogd2 and ulogd2-json are not installed (apt-get install ulogd2-json)")
    conf = tmp_path / "ulogd.conf"
    conf.write_text(ulogd_conf(tmp_path, GROUP, "egress.json"))
    with network_namespace("offgrid-audit-rec") as ns:
        subprocess.run(ns.command(["nft", "-f", "-"]), input=RULESET, text=True, check=True)
        ns.spawn(["/usr/bin/python3", str(STANDIN), "peer", "--listen", PEER])
        ulogd = subprocess.Popen(ns.command(["ulogd", "-c", str(conf)]), start_new_session=True)
        ns.processes.append(ulogd)  # type: ignore[arg-type]
        for _ in range(100):
            if _listening(ns):
                break
            time.sleep(0.05)
        assert _listening(ns), (tmp_path / "ulogd.log").read_text()
        yield ns, tmp_path / "egress.json"


def _engine(ns: Namespace) -> int:
    argv = ["/usr/bin/python3", str(STANDIN), "serve", "--listen", "127.0.0.1:11434"]
    return ns.spawn(argv, user=SERVICE_UID).pid


def _audit(ns: Namespace, out: Path, pid: int, log: Path, *extra: str) -> tuple[int, dict]:
    done = ns.run(
        [sys.executable, "-m", "auditor", "audit", "--engine", "ollama", "--engine-pid", str(pid),
         "--egress-log", str(log), "--output", str(out), *extra]
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    controls = {c["id"]: c for c in json.loads(out.read_text())["controls"]}
    return done.returncode, controls


def _attempts(ns: Namespace) -> None:
    argv = ["setpriv", f"--reuid={SERVICE_UID}", f"--regid={SERVICE_UID}", "--clear-groups",
            "/usr/bin/python3", "-c", ATTEMPTS]  # fmt: skip
    subprocess.run(ns.command(argv), check=True, timeout=60)


def _wait_for_records(log: Path, count: int) -> None:
    for _ in range(100):
        if log.exists() and len(log.read_text().splitlines()) >= count:
            return
        time.sleep(0.05)


def test_twenty_short_attempts_between_two_audits_fail_with_every_destination(
    recorded: tuple[Namespace, Path], tmp_path: Path
) -> None:
    ns, log = recorded
    pid = _engine(ns)
    _, before = _audit(ns, tmp_path / "1.json", pid, log)
    assert before["OG-NET-05"]["status"] == "pass", before["OG-NET-05"]
    _attempts(ns)
    _wait_for_records(log, 20)
    code, after = _audit(ns, tmp_path / "2.json", pid, log)
    control = after["OG-NET-05"]
    assert code == 1 and control["status"] == "fail", control
    listed = [e["value"] for e in control["evidence"] if e["label"] == "attempt"]
    assert len(listed) == 20, listed
    assert control["summary"].startswith("20 egress attempt(s)")
    for destination in ("198.18.77.50:443", "198.18.77.51:53",
                        "[2001:db8:77::50]:443", "[2001:db8:77::51]:53"):  # fmt: skip
        assert sum(destination in line for line in listed) == 5, (destination, listed)
    assert all(line[:4].isdigit() and f"uid {SERVICE_UID}" in line for line in listed)
    assert sum(" udp " in line for line in listed) == 10


def test_the_audits_own_probe_is_recognised_night_after_night(
    recorded: tuple[Namespace, Path], tmp_path: Path
) -> None:
    ns, log = recorded
    pid = _engine(ns)
    _audit(ns, tmp_path / "1.json", pid, log, "--egress-probe", PEER)
    _wait_for_records(log, 1)
    _, controls = _audit(ns, tmp_path / "2.json", pid, log, "--egress-probe", PEER)
    assert controls["OG-NET-04"]["status"] == "pass"
    control = controls["OG-NET-05"]
    assert control["status"] == "pass", control
    probes = [e["value"] for e in control["evidence"] if e["label"] == "the audit's own probe"]
    # both probes used the same source port to the same target within seconds: one flow
    assert probes == ["1 recorded attempt(s), 2 packet(s)"], control


def test_a_recorder_that_is_not_listening_is_not_a_pass(
    recorded: tuple[Namespace, Path], tmp_path: Path
) -> None:
    ns, log = recorded
    pid = _engine(ns)
    for proc in ns.processes[1:]:  # ulogd: the stand-in peer is first
        if proc.pid != pid and proc.args[-2:] == ["-c", str(tmp_path / "ulogd.conf")]:
            proc.kill()
            proc.wait()
    _, controls = _audit(ns, tmp_path / "r.json", pid, log)
    control = controls["OG-NET-05"]
    assert control["status"] == "fail", control
    assert "nothing listens on NFLOG group" in control["summary"]


def _continuity(controls: dict) -> tuple[str, str]:
    control = controls["OG-NET-07"]
    return control["status"], control["summary"]


def _restart_recorder(ns: Namespace, tmp_path: Path) -> None:
    conf = str(tmp_path / "ulogd.conf")
    for proc in list(ns.processes):
        if getattr(proc, "args", [])[-2:] == ["-c", conf] and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
    ulogd = subprocess.Popen(ns.command(["ulogd", "-c", conf]), start_new_session=True)
    ns.processes.append(ulogd)  # type: ignore[arg-type]
    for _ in range(100):
        if _listening(ns):
            return
        time.sleep(0.05)
    raise AssertionError("the restarted recorder does not listen")


def test_each_night_reports_the_attempts_since_the_last_and_every_restart(
    recorded: tuple[Namespace, Path], tmp_path: Path
) -> None:
    ns, log = recorded
    pid = _engine(ns)
    history = str(tmp_path / "history")

    def night(n: int) -> tuple[int, dict]:
        return _audit(ns, tmp_path / f"n{n}.json", pid, log, "--history", history)

    _, first = night(1)
    assert _continuity(first)[0] == "not_applicable" and "first night" in _continuity(first)[1]
    assert first["OG-NET-05"]["status"] == "pass", first["OG-NET-05"]
    _attempts(ns)
    _wait_for_records(log, 20)
    code, second = night(2)
    control = second["OG-NET-05"]
    assert code == 1 and control["status"] == "fail", control
    assert (
        control["summary"].startswith("20 egress attempt(s)")
        and "since the previous" in (control["summary"])
    )
    listed = [e["value"] for e in control["evidence"] if e["label"] == "attempt"]
    assert len(listed) == 20 and all(line[:4].isdigit() for line in listed), listed
    assert _continuity(second)[0] == "pass", _continuity(second)
    report = json.loads((tmp_path / "n2.json").read_text())
    delta = report["extra"]["egress_recording"][0]
    assert delta["new_packets"] == delta["state"]["recorded_packets"] >= 20, delta
    # a delta, not a running total: the next night has nothing new
    code, third = night(3)
    assert third["OG-NET-05"]["status"] == "pass" and _continuity(third)[0] == "pass", third
    # a reload of the ruleset starts its counter over: the next night says so
    ns.run(["nft", "delete", "table", "inet", "offgrid_egress"])
    subprocess.run(ns.command(["nft", "-f", "-"]), input=RULESET, text=True, check=True)
    _, fourth = night(4)
    status, summary = _continuity(fourth)
    assert status == "fail" and summary.startswith("recording restarted"), summary
    assert "ruleset was reloaded" in summary, summary
    _, fifth = night(5)
    assert _continuity(fifth)[0] == "pass", _continuity(fifth)
    _restart_recorder(ns, tmp_path)
    _, sixth = night(6)
    status, summary = _continuity(sixth)
    assert status == "fail" and "recorder restarted at" in summary, summary

"""OG-NET-05/07 for a sealed engine: the seal's rule and a real ulogd2 inside its namespace.

Two namespaces of the test's own: `host`, where `offgrid audit` runs, and `engine`, set up
as role offgrid_seal sets up the sealed engine's (loopback, a sink with the default route,
table inet offgrid_seal whose rule logs to NFLOG group GROUP, counts and rejects). ulogd2
(Debian's, with its JSON output) runs inside `engine`, as role offgrid_seal's recorder
does. The audit enters the engine's namespace to read the rule and the listener; the host
namespace has neither. No packet leaves the engine's namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.netns import (
    ULOGD_PLUGINS,
    Namespace,
    network_namespace,
    seal,
    ulogd_conf,
)

pytestmark = pytest.mark.root

STANDIN = Path(__file__).resolve().parents[1] / "standins" / "engine_sockets_standin.py"
SERVICE_UID = 64127
GROUP = 7412

RULES = f"""\
table inet offgrid_seal {{
  chain output {{
    type filter hook output priority filter; policy accept;
    oifname "lo" accept comment "OG-NET-06 loopback stays in the sealed namespace"
    log prefix "offgrid-seal " group {GROUP} comment "OG-NET-05 sealed engine egress recorded"
    counter reject comment "OG-NET-06 sealed engine egress rejected and counted"
  }}
}}
"""


# 20 children of the engine's uid, each living ~20 ms around one attempt out of the seal
ATTEMPTS = """\
import os, socket, time
targets = [("198.51.100.50", 443, "tcp"), ("198.51.100.51", 53, "udp")]
for i in range(20):
    host, port, proto = targets[i % 2]
    if os.fork() == 0:
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.connect((host, port)) if proto == "tcp" else s.sendto(b"x", (host, port))
            except OSError:
                pass
            time.sleep(0.02)
        os._exit(0)
    os.wait()
"""


@dataclass
class Sealed:
    host: Namespace
    engine: Namespace
    directory: Path
    pid: int  # the engine stand-in
    recorder: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.directory / "seal.json"


def _listening(engine: Namespace) -> bool:
    table = engine.run(["cat", "/proc/net/netfilter/nfnetlink_log"]).stdout
    return any(line.split()[:1] == [str(GROUP)] for line in table.splitlines())


def start_recorder(s: Sealed) -> None:
    if s.recorder is not None and s.recorder.poll() is None:
        s.recorder.terminate()
        s.recorder.wait(timeout=10)
    conf = s.directory / "ulogd.conf"
    proc = subprocess.Popen(s.engine.command(["ulogd", "-c", str(conf)]), start_new_session=True)
    s.engine.processes.append(proc)  # type: ignore[arg-type]
    s.recorder = proc
    for _ in range(100):
        if _listening(s.engine):
            return
        time.sleep(0.05)
    raise AssertionError((s.directory / "ulogd.log").read_text())


@pytest.fixture
def sealed(tmp_path: Path) -> Iterator[Sealed]:
    if shutil.which("ulogd") is None or not (ULOGD_PLUGINS / "ulogd_output_JSON.so").exists():
        pytest.skip("ulogd2 and ulogd2-json are not installed (apt-get install ulogd2-json)")
    (tmp_path / "ulogd.conf").write_text(ulogd_conf(tmp_path, GROUP, "seal.json"))
    with network_namespace("og-sr-host") as host, network_namespace("og-sr-engine") as engine:
        seal(engine, RULES)
        argv = ["/usr/bin/python3", str(STANDIN), "serve", "--listen", "127.0.0.1:11434"]
        pid = engine.spawn(argv, user=SERVICE_UID).pid
        s = Sealed(host, engine, tmp_path, pid)
        start_recorder(s)
        yield s


def audit(s: Sealed, name: str, *extra: str) -> dict[str, dict]:
    out = s.directory / f"{name}.json"
    done = s.host.run(
        [sys.executable, "-m", "auditor", "audit", "--engine", "ollama", "--engine-pid",
         str(s.pid), "--output", str(out), *extra]
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    report = json.loads(out.read_text())
    controls = {c["id"]: c for c in report["controls"]}
    controls["report"] = report
    return controls


def attempts(s: Sealed) -> None:
    argv = ["setpriv", f"--reuid={SERVICE_UID}", f"--regid={SERVICE_UID}", "--clear-groups",
            "/usr/bin/python3", "-c", ATTEMPTS]  # fmt: skip
    subprocess.run(s.engine.command(argv), check=True, timeout=60)
    for _ in range(100):
        if s.log.exists() and len(s.log.read_text().splitlines()) >= 20:
            return
        time.sleep(0.05)


def _listed(control: dict) -> list[str]:
    return [e["value"] for e in control["evidence"] if e["label"] == "attempt"]


def test_attempts_out_of_the_seal_are_listed_and_a_restarted_recorder_is_reported(
    sealed: Sealed,
) -> None:
    history = str(sealed.directory / "history")
    nights = ("--seal-log", str(sealed.log), "--history", history)
    first = audit(sealed, "n1", *nights)
    assert first["OG-NET-05"]["status"] == "pass", first["OG-NET-05"]
    assert first["OG-NET-07"]["status"] == "not_applicable", first["OG-NET-07"]
    state = first["report"]["extra"]["egress_recording"][0]["state"]
    assert state["sealed"] is True and state["namespace"].startswith("net:["), state
    assert state["logger"]["name"] == "ulogd" and state["rule"]["table"] == "offgrid_seal"
    attempts(sealed)
    second = audit(sealed, "n2", *nights)
    control = second["OG-NET-05"]
    assert control["status"] == "fail", control
    assert control["summary"].startswith("20 egress attempt(s) from the engine's network")
    assert "since the previous audit" in control["summary"], control["summary"]
    listed = _listed(control)
    assert len(listed) == 20, listed
    assert sum("tcp 198.51.100.50:443" in line for line in listed) == 10, listed
    assert sum("udp 198.51.100.51:53" in line for line in listed) == 10, listed
    assert all(f"uid {SERVICE_UID}" in line and "engine's namespace" in line for line in listed)
    assert second["OG-NET-07"]["status"] == "pass", second["OG-NET-07"]
    section = second["report"]["extra"]["egress_recording"][0]
    assert section["new_packets"] == section["state"]["recorded_packets"] >= 20, section
    third = audit(sealed, "n3", *nights)
    assert third["OG-NET-05"]["status"] == "pass", third["OG-NET-05"]
    start_recorder(sealed)
    fourth = audit(sealed, "n4", *nights)
    continuity = fourth["OG-NET-07"]
    assert continuity["status"] == "fail", continuity
    assert continuity["summary"].startswith("recording restarted"), continuity["summary"]
    assert "recorder restarted at" in continuity["summary"], continuity["summary"]


def test_counted_packets_missing_from_the_log_are_recording_broken(sealed: Sealed) -> None:
    history = str(sealed.directory / "history")
    nights = ("--seal-log", str(sealed.log), "--history", history)
    audit(sealed, "n1", *nights)
    assert sealed.recorder is not None
    os.kill(sealed.recorder.pid, signal.SIGSTOP)  # listening, but writing nothing
    try:
        attempts(sealed)
        controls = audit(sealed, "n2", *nights)
    finally:
        os.kill(sealed.recorder.pid, signal.SIGCONT)
    continuity = controls["OG-NET-07"]
    assert continuity["status"] == "fail", continuity
    assert continuity["summary"].startswith("recording broken"), continuity["summary"]
    assert "are not in the log" in continuity["summary"], continuity["summary"]


def test_without_a_recorder_in_the_namespace_nothing_passes(sealed: Sealed) -> None:
    assert sealed.recorder is not None
    sealed.recorder.terminate()
    sealed.recorder.wait(timeout=10)
    controls = audit(sealed, "none", "--seal-log", str(sealed.log))
    control = controls["OG-NET-05"]
    assert control["status"] == "fail", control
    assert "no recorder in the engine's network namespace" in control["summary"], control
    # a recorder for the host's namespace only does not cover the sealed engine
    host_log = sealed.directory / "host.json"
    host_log.write_text("")
    controls = audit(sealed, "host-only", "--egress-log", str(host_log))
    control = controls["OG-NET-05"]
    assert control["status"] == "fail", control
    assert "no recorder log is configured for its namespace" in control["summary"], control

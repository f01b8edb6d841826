"""Recorded Facts for the check tests: a small, explicit machine, changed per test."""

from __future__ import annotations

import dataclasses
from typing import Any

from auditor.inventory.interface import (
    AuditOptions,
    EgressFacts,
    EngineFacts,
    Facts,
    HardeningFacts,
    Privilege,
    ProcessFact,
    SecurityScore,
    ServiceUserFact,
    SocketFact,
    UnitFacts,
)
from auditor.models import vulnbundle

ROOT = Privilege(euid=0, is_root=True, note="root")
USER = Privilege(euid=1000, is_root=False, note="not root")

ENGINE_PID = 4242
RUNNER_PID = 4243


def proc(
    pid: int, ppid: int = 1, name: str = "ollama", cmdline: tuple[str, ...] = ()
) -> ProcessFact:
    return ProcessFact(pid, 1000.0 + pid, ppid, name, f"/usr/bin/{name}", cmdline, "ollama", 999)


def sock(
    local: str, port: int, *, pid: int | None = ENGINE_PID, state: str = "LISTEN",
    remote: str | None = None, rport: int | None = None, protocol: str = "tcp",
) -> SocketFact:  # fmt: skip
    family = "ipv6" if ":" in local else "ipv4"
    return SocketFact(protocol, family, local, port, remote, rport, state, pid)


MAIN = proc(ENGINE_PID, cmdline=("/usr/bin/ollama", "serve"))
RUNNER = proc(RUNNER_PID, ppid=ENGINE_PID, cmdline=("/usr/bin/ollama", "runner"))

UNIT = UnitFacts(
    name="ollama.service",
    fragment_path="/etc/systemd/system/ollama.service",
    dropin_paths=("/etc/systemd/system/ollama.service.d/override.conf",),
    environment={"OLLAMA_HOST": "127.0.0.1:11434", "OLLAMA_NO_CLOUD": "1"},
    properties={
        "MainPID": str(ENGINE_PID),
        "User": "ollama",
        "IPAddressDeny": "any",
        "IPAddressAllow": "127.0.0.0/8 ::1/128",
    },
    source="systemctl",
    dropins_on_disk=("/etc/systemd/system/ollama.service.d/override.conf",),
)


def engine(**changes: Any) -> EngineFacts:
    base = EngineFacts(
        kind="ollama", discovered_by="unit", main=MAIN, tree=(MAIN, RUNNER),
        exe_path="/usr/bin/ollama", version="0.20.0",
        environ={"OLLAMA_HOST": "127.0.0.1:11434", "OLLAMA_NO_CLOUD": "1", "PATH": "/usr/bin"},
        unit=UNIT, port=11434, listen_host="127.0.0.1",
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def facts(**changes: Any) -> Facts:
    base = Facts(
        hostname="ws1", collected_at="2026-11-24T00:00:00+00:00", privilege=ROOT,
        options=AuditOptions(), processes=(MAIN, RUNNER),
        sockets=(sock("127.0.0.1", 11434),), engine=engine(), systemd_running=True,
        egress=EgressFacts(nft_rules=(), nft_error=None, probe=None),
        hardening=HardeningFacts(
            security=SecurityScore(1.1, "OK", None),
            service_user=ServiceUserFact("ollama", 999, 999, "/bin/false", "process"),
            files=(),
        ),
        vulnerabilities=vulnbundle.select(None),
    )  # fmt: skip
    return dataclasses.replace(base, **changes)

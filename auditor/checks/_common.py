"""Small helpers shared by the check families (not a family: no checks here)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from auditor.engine_kind import EngineKind
from auditor.inventory.interface import EngineFacts, Facts, SocketFact
from auditor.verdicts import CannotEvaluate

NO_ENGINE = (
    f"no {' or '.join(EngineKind)} engine was found (by unit, process, port or --engine-pid)"
)


def require_engine(facts: Facts, *, running: bool) -> EngineFacts:
    """The engine; CannotEvaluate when there is none, or it must run and does not."""
    engine = facts.engine
    if engine is None:
        raise CannotEvaluate(NO_ENGINE)
    if running and engine.main is None:
        unit = engine.unit.name if engine.unit else "?"
        raise CannotEvaluate(
            f"the {engine.kind} engine is not running (unit {unit})", [("unit", unit)]
        )
    return engine


def is_loopback(address: str | None) -> bool:
    """127.0.0.0/8, ::1 and IPv4-mapped loopback; "localhost" counts as loopback."""
    if address is None:
        return False
    if address == "localhost":
        return True
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped.is_loopback
    return parsed.is_loopback


def describe_socket(sock: SocketFact) -> str:
    local = f"{_host(sock.local_address)}:{sock.local_port}"
    remote = f" -> {_host(sock.remote_address)}:{sock.remote_port}" if sock.remote_address else ""
    owner = f"pid {sock.pid}" if sock.pid is not None else "owner unknown"
    return f"{sock.protocol}/{sock.family} {local}{remote} {sock.state} ({owner})"


def _host(address: str | None) -> str:
    return f"[{address}]" if address and ":" in address else str(address)


def tree_pids(engine: EngineFacts) -> set[int]:
    return {p.pid for p in engine.tree}


def effective_environment(engine: EngineFacts) -> tuple[Mapping[str, str], str] | None:
    """The environment the engine runs with: its own if readable, else the unit's."""
    if engine.environ is not None:
        pid = engine.main.pid if engine.main else "?"
        return engine.environ, f"/proc/{pid}/environ"
    if engine.unit is not None:
        return engine.unit.environment, f"unit {engine.unit.name} (process environment unreadable)"
    return None


def go_bool(value: str | None) -> bool:
    """Ollama's envconfig.Bool: unset/empty is false, unparsable non-empty is true."""
    if not value:
        return False
    return value.strip().lower() not in ("0", "f", "false")

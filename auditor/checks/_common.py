"""Small helpers shared by the check families (not a family: no checks here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import psutil

from auditor.engine_kind import EngineKind
from auditor.inventory.interface import EngineFacts, Facts, NamespaceFacts, SocketFact
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


def is_bound(sock: SocketFact) -> bool:
    """A listening TCP socket or a bound, unconnected UDP socket."""
    if sock.protocol == "tcp":
        return sock.state == psutil.CONN_LISTEN
    return sock.remote_address is None


@dataclass(frozen=True)
class EngineView:
    """The running engine and the socket table of the namespace it runs in."""

    engine: EngineFacts
    sockets: tuple[SocketFact, ...]  # the engine's namespace (the audit's own when shared)
    space: NamespaceFacts | None  # the engine's namespace; None: shared and not read apart
    foreign: bool  # the engine runs in another namespace than the audit

    def where(self) -> str:
        """ " in network namespace net:[…] (cgroup)" for a foreign engine, else ""."""
        if not self.foreign or self.space is None:
            return ""
        held = f" ({self.space.cgroup})" if self.space.cgroup else ""
        return f" in network namespace {self.space.namespace}{held}"


def engine_namespace(facts: Facts) -> NamespaceFacts | None:
    return next((n for n in facts.namespaces if n.role == "engine"), None)


def engine_view(facts: Facts) -> EngineView:
    """The running engine with its namespace's sockets; CannotEvaluate when they are unread."""
    engine = require_engine(facts, running=True)
    space = engine_namespace(facts)
    if not engine.foreign_netns:
        return EngineView(engine, facts.sockets, space, foreign=False)
    if space is None:
        raise CannotEvaluate("the engine runs in another network namespace that was not read")
    if space.error is not None or space.sockets is None:
        raise CannotEvaluate(
            f"the engine's network namespace {space.namespace} could not be read: {space.error}",
            [("namespace", f"{space.namespace} via pid {space.pid}: {space.error}")],
        )
    return EngineView(engine, space.sockets, space, foreign=True)


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

"""OG-RUN: the engine's inference runners and every listener in its process tree.

Ollama since v0.30.0 serves inference from upstream `llama-server` children it starts with
`--host 127.0.0.1 --port <ephemeral> --offline --no-webui`: unauthenticated listeners, but
expected ones. Anything else that listens or binds in the tree is not. `ollama serve` (the
unit's main process) starts each runner itself (os/exec, no intermediate process), so a runner
whose parent is any other process was not started by the engine.
"""

from __future__ import annotations

from auditor.checks._common import (
    describe_socket,
    engine_view,
    is_bound,
    require_engine,
    tree_pids,
)
from auditor.checks.interface import check
from auditor.inventory.interface import EngineFacts, Facts, RunnerFact, SocketFact
from auditor.inventory.profiles import runners
from auditor.inventory.sockets import is_loopback
from auditor.verdicts import DoesNotApply, Finding, Status, finding


def _role(sock: SocketFact, engine: EngineFacts, by_pid: dict[int, RunnerFact]) -> str | None:
    """What an expected listener is ("API", "runner …"); None when it is not expected.

    The API is the engine's own port held by a process of its tree that is not a runner
    (Ollama's server listens in its main process; a launcher may leave it to its child)."""
    if sock.protocol != "tcp":
        return None
    if sock.local_port == engine.port and sock.pid not in by_pid:
        return "the engine's API"
    runner = by_pid.get(sock.pid) if sock.pid is not None else None
    if runner and runner.port == sock.local_port and is_loopback(sock.local_address):
        return f"{runner.kind} runner (pid {runner.pid}, its --port)"
    return None


@check("OG-RUN-01")
def tree_listeners_are_expected(facts: Facts) -> Finding:
    view = engine_view(facts)
    engine = view.engine
    pids = tree_pids(engine)
    by_pid = {r.pid: r for r in runners(engine)}
    seen = {*view.sockets, *facts.sockets, *facts.watched_sockets}
    bound = sorted(
        (s for s in seen if s.pid in pids and is_bound(s)),
        key=lambda s: (s.pid or 0, s.local_port),
    )
    roles = [(s, _role(s, engine, by_pid)) for s in bound]
    evidence = [(role or "unexpected", describe_socket(s)) for s, role in roles]
    unexpected = [s for s, role in roles if role is None]
    if unexpected:
        return finding(
            Status.FAIL,
            f"{len(unexpected)} listener(s) or bind(s) in the engine's tree are neither its API "
            "nor a runner on its own loopback port: "
            + ", ".join(describe_socket(s) for s in unexpected),
            evidence,
        )
    if not bound:
        why = "" if facts.privilege.is_root else " (not root: its sockets may be hidden)"
        return finding(Status.ERROR, f"no listening socket of the engine's tree was found{why}")
    return finding(
        Status.PASS,
        f"{len(bound)} listener(s) in the engine's tree: its API and {len(by_pid)} runner(s)",
        evidence,
    )


def _runner_problems(runner: RunnerFact, ppid: int, main: int) -> list[str]:
    problems = []
    if ppid != main:
        problems.append(f"its parent is pid {ppid}, not the engine (pid {main})")
    if runner.host is not None and not is_loopback(runner.host):
        problems.append(f"started with --host {runner.host}, not a loopback address")
    if runner.offline is False:
        problems.append("started without --offline (it may fetch models from the network)")
    return problems


@check("OG-RUN-02")
def runners_are_children_on_loopback_offline(facts: Facts) -> Finding:
    engine = require_engine(facts, running=True)
    assert engine.main is not None
    found = runners(engine)
    if not found:
        raise DoesNotApply(
            f"no runner of the {engine.kind} engine is running (no model loaded, or the engine "
            "starts none)"
        )
    parents = {p.pid: p.ppid for p in engine.tree}
    evidence, failing = [], []
    for runner in found:
        problems = _runner_problems(runner, parents[runner.pid], engine.main.pid)
        where = f"{runner.host or 'default host'}:{runner.port}"
        offline = {True: "--offline", False: "online", None: "no --offline flag"}[runner.offline]
        evidence.append((f"runner {runner.pid}", f"{runner.kind} {where}, {offline}"))
        if problems:
            failing.append(f"pid {runner.pid}: " + "; ".join(problems))
    if failing:
        return finding(
            Status.FAIL, "runner(s) not as the engine starts them: " + " | ".join(failing), evidence
        )
    return finding(
        Status.PASS,
        f"{len(found)} runner(s), each a child of the engine, on loopback, offline where the "
        "runner has the flag",
        evidence,
    )

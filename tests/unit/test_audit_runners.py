"""OG-RUN on recorded facts: Ollama's llama-server runners (v0.30+) and legacy `ollama
runner` children are expected listeners; anything else in the tree, or a runner not started
as the engine starts it, fails."""

from __future__ import annotations

import dataclasses

from auditor.checks import run
from auditor.engine_kind import EngineKind
from auditor.inventory import ollama
from auditor.inventory.discovery import find_by_process
from auditor.inventory.interface import Facts, ProcessFact, SocketFact
from auditor.verdicts import Status
from tests.unit.audit_facts import ENGINE_PID, MAIN, engine, facts, proc, sock

RUNNER_PORT = 40123
LIB = "/usr/local/lib/ollama/llama-server"


def llama_runner(
    *extra: str, pid: int = 4300, ppid: int = ENGINE_PID, host: str = "127.0.0.1",
    offline: bool = True,
) -> ProcessFact:  # fmt: skip
    argv = [LIB, "--model", "/m/blobs/sha256-ab", "--port", str(RUNNER_PORT), "--host", host]
    argv += ["--no-webui", *(["--offline"] if offline else []), "-c", "8192", "-np", "1", *extra]
    return proc(pid, ppid=ppid, name="llama-server", cmdline=tuple(argv))


def with_tree(*children: ProcessFact, sockets: tuple[SocketFact, ...] = ()) -> Facts:
    tree = (MAIN, *children)
    api = sock("127.0.0.1", 11434)
    return facts(engine=engine(tree=tree), processes=tree, sockets=(api, *sockets))


def test_api_and_runner_on_its_port_pass() -> None:
    audited = with_tree(llama_runner(), sockets=(sock("127.0.0.1", RUNNER_PORT, pid=4300),))
    result = run.tree_listeners_are_expected(audited)
    assert result.status is Status.PASS, result.summary
    assert any("llama-server runner" in e.label for e in result.evidence)
    assert run.runners_are_children_on_loopback_offline(audited).status is Status.PASS


def test_other_listeners_in_the_tree_fail() -> None:
    cases = {
        "runner on a second port": sock("127.0.0.1", 9999, pid=4300),
        "runner on all addresses": sock("0.0.0.0", RUNNER_PORT, pid=4300),
        "engine on a second port": sock("127.0.0.1", 6060),
        "udp bind": sock("127.0.0.1", 5353, pid=4300, protocol="udp", state="NONE"),
    }
    for what, planted in cases.items():
        audited = with_tree(
            llama_runner(), sockets=(sock("127.0.0.1", RUNNER_PORT, pid=4300), planted)
        )
        result = run.tree_listeners_are_expected(audited)
        assert result.status is Status.FAIL, what
        assert str(planted.local_port) in result.summary, what


def test_listener_of_a_child_that_is_no_runner_fails() -> None:
    helper = proc(
        4400, ppid=ENGINE_PID, name="python3", cmdline=("python3", "-m", "http.server", "8088")
    )
    audited = with_tree(helper, sockets=(sock("0.0.0.0", 8088, pid=4400),))
    assert run.tree_listeners_are_expected(audited).status is Status.FAIL


def test_runner_not_as_the_engine_starts_it_fails() -> None:
    online = with_tree(llama_runner(offline=False))
    result = run.runners_are_children_on_loopback_offline(online)
    assert result.status is Status.FAIL and "--offline" in result.summary
    exposed = with_tree(llama_runner(host="0.0.0.0"))
    result = run.runners_are_children_on_loopback_offline(exposed)
    assert result.status is Status.FAIL and "0.0.0.0" in result.summary
    middle = proc(4500, name="sh", cmdline=("sh", "-c", "llama-server"))
    grandchild = with_tree(middle, llama_runner(ppid=4500))
    result = run.runners_are_children_on_loopback_offline(grandchild)
    assert result.status is Status.FAIL and "not the engine" in result.summary


def test_no_runner_is_not_applicable_and_legacy_runner_passes() -> None:
    idle = with_tree()
    assert run.runners_are_children_on_loopback_offline(idle).status is Status.NOT_APPLICABLE
    argv = ("/usr/bin/ollama", "runner", "--model", "m", "--port", "41000")
    legacy = proc(4600, ppid=ENGINE_PID, cmdline=argv)
    audited = with_tree(legacy, sockets=(sock("127.0.0.1", 41000, pid=4600),))
    assert run.tree_listeners_are_expected(audited).status is Status.PASS
    assert run.runners_are_children_on_loopback_offline(audited).status is Status.PASS


def test_runner_run_by_an_interpreter_is_recognised() -> None:
    script = proc(
        4700, name="python3",
        cmdline=("/usr/bin/python3", "/x/lib/ollama/llama-server", "--port", "1", "--offline"),
    )  # fmt: skip
    found = ollama.runner(script)
    assert found is not None and found.kind == "llama-server" and found.port == 1
    assert found.offline is True
    assert ollama.runner(proc(4701, cmdline=("/usr/bin/python3", "-m", "llama-server"))) is None


def test_an_ollama_runner_is_never_taken_for_a_llamacpp_engine() -> None:
    runner = llama_runner()
    assert find_by_process([MAIN, runner], [EngineKind.LLAMACPP]) is None
    alone = dataclasses.replace(runner, ppid=1)
    found = find_by_process([alone], [EngineKind.LLAMACPP])
    assert found is not None and found[0].pid == alone.pid

"""OG-CFG-06 (live CORS probe), OG-CFG-07 (the running server's cloud status) and OG-AGT-01
(the CLI agent's tool switches) on recorded facts, and the login-file reader."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from auditor.checks import agt, cfg
from auditor.inventory import cli_env
from auditor.inventory.cli_env import ALL_USERS
from auditor.inventory.interface import CliUserEnv, Facts, HttpProbe, JournalLine, LiveFacts
from auditor.verdicts import Status
from tests.unit.audit_facts import engine, facts

ORIGIN = "http://offgrid-cors-probe.invalid"
SWITCHES = {"OLLAMA_AGENT_DISABLE_SHELL": "1", "OLLAMA_AGENT_DISABLE_WEBSEARCH": "1"}


def probe(
    status: int | None, headers: dict[str, str] | None = None, body: object = None
) -> HttpProbe:
    return HttpProbe("http://127.0.0.1:11434/x", "GET", status, headers or {}, body, None)


def live(**changes: Any) -> LiveFacts:
    base = LiveFacts(
        ORIGIN,
        probe(403),
        probe(200, body={"cloud": {"disabled": True, "source": "both"}}),
        JournalLine("ollama.service", "abc", 'msg="Ollama cloud disabled: true"', None),
    )
    return dataclasses.replace(base, **changes)


def with_live(**changes: Any) -> Facts:
    return facts(live=live(**changes))


def test_cors_probe_refused_passes_and_allowed_fails() -> None:
    assert cfg.cors_origins_not_widened(with_live()).status is Status.PASS
    echoed = with_live(cors=probe(200, {"access-control-allow-origin": ORIGIN}))
    result = cfg.cors_origins_not_widened(echoed)
    assert result.status is Status.FAIL and "any web page" in result.summary
    star = with_live(cors=probe(204, {"access-control-allow-origin": "*"}))
    assert cfg.cors_origins_not_widened(star).status is Status.FAIL


def test_llamacpp_cors_needs_the_probe() -> None:
    llama = engine(kind="llamacpp", environ={})
    wide = facts(engine=llama, live=live(cors=probe(200, {"access-control-allow-origin": ORIGIN})))
    assert cfg.cors_origins_not_widened(wide).status is Status.FAIL
    unanswered = facts(engine=llama, live=live(cors=probe(None)))
    assert cfg.cors_origins_not_widened(unanswered).status is Status.ERROR


def test_running_server_cloud_status() -> None:
    assert cfg.running_server_says_cloud_disabled(with_live()).status is Status.PASS
    enabled = with_live(cloud_status=probe(200, body={"cloud": {"disabled": False}}))
    assert cfg.running_server_says_cloud_disabled(enabled).status is Status.FAIL
    logged_false = with_live(
        cloud_log=JournalLine("ollama.service", "abc", "Ollama cloud disabled: false", None)
    )
    assert cfg.running_server_says_cloud_disabled(logged_false).status is Status.FAIL
    old = cfg.running_server_says_cloud_disabled(with_live(cloud_status=probe(404)))
    assert old.status is Status.ERROR and "0.16.2" in old.summary
    no_log = with_live(cloud_log=JournalLine("ollama.service", "abc", None, None))
    result = cfg.running_server_says_cloud_disabled(no_log)
    assert result.status is Status.PASS and "not found" in result.summary


def _user(
    name: str, settings: dict[str, str], live_env: dict[int, dict[str, str | None]] | None = None
) -> CliUserEnv:
    return CliUserEnv(
        name, "/home/" + name, {k: (v, "/home/x/.profile") for k, v in settings.items()},
        (), live_env or {},
    )  # fmt: skip


def _agent(*users: CliUserEnv, service: dict[str, str] | None = None) -> Facts:
    env = {"OLLAMA_HOST": "127.0.0.1:11434", **(SWITCHES if service is None else service)}
    return facts(engine=engine(environ=env), cli_users=users)


def test_agent_switches_for_service_and_users() -> None:
    system = _user(ALL_USERS, {})
    ok = _agent(system, _user("dev", SWITCHES))
    assert agt.agent_tools_switched_off(ok).status is Status.PASS
    only_shell = _agent(system, _user("dev", {"OLLAMA_AGENT_DISABLE_SHELL": "1"}))
    result = agt.agent_tools_switched_off(only_shell)
    assert result.status is Status.FAIL and "OLLAMA_AGENT_DISABLE_WEBSEARCH" in result.summary
    service = _agent(system, _user("dev", SWITCHES), service={})
    assert "service" in agt.agent_tools_switched_off(service).summary
    running = _user("dev", SWITCHES, {77: {"OLLAMA_AGENT_DISABLE_SHELL": "1"}})
    result = agt.agent_tools_switched_off(_agent(system, running))
    assert result.status is Status.FAIL and "pid 77" in result.summary


def test_agent_switches_system_wide_or_no_user_configured() -> None:
    nobody = agt.agent_tools_switched_off(_agent(_user(ALL_USERS, {})))
    assert nobody.status is Status.FAIL and "--cli-user" in nobody.summary
    system_wide = _agent(_user(ALL_USERS, SWITCHES))
    assert agt.agent_tools_switched_off(system_wide).status is Status.PASS
    llama = facts(engine=engine(kind="llamacpp"))
    assert agt.agent_tools_switched_off(llama).status is Status.NOT_APPLICABLE


def test_login_files_last_assignment_wins_and_unset_clears(tmp_path: Path) -> None:
    system = tmp_path / "environment"
    system.write_text('OLLAMA_AGENT_DISABLE_SHELL="1"\nOLLAMA_AGENT_DISABLE_WEBSEARCH=1\n')
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("# mine\nunset OLLAMA_AGENT_DISABLE_WEBSEARCH\n")
    (home / ".profile").write_text("export OLLAMA_AGENT_DISABLE_SHELL=yes # keep\n")
    entry = cli_env.user_env("dev", home, list(SWITCHES), [system], {})
    assert entry.settings["OLLAMA_AGENT_DISABLE_SHELL"] == ("yes", str(home / ".profile"))
    assert "OLLAMA_AGENT_DISABLE_WEBSEARCH" not in entry.settings
    pam = home / ".pam_environment"
    pam.write_text("OLLAMA_AGENT_DISABLE_WEBSEARCH DEFAULT=1\n")
    (home / ".bashrc").unlink()
    entry = cli_env.user_env("dev", home, list(SWITCHES), [system], {})
    assert entry.settings["OLLAMA_AGENT_DISABLE_WEBSEARCH"][1] == str(pam)
    missing = cli_env.user_env("ghost", None, list(SWITCHES), [system], {})
    assert missing.errors and agt._user_problems(missing, tuple(SWITCHES))

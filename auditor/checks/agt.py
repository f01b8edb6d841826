"""OG-AGT: the engine CLI's agent and its tools.

Ollama's CLI agent (2026-07) registers Bash, Read, Edit, WebSearch and WebFetch tools; a
model can run shell commands and fetch web pages through them, an egress path of the CLI
that no server setting closes. OLLAMA_AGENT_DISABLE_SHELL and OLLAMA_AGENT_DISABLE_WEBSEARCH
(any non-empty value) switch the dangerous ones off.
"""

from __future__ import annotations

from auditor.checks._common import effective_environment, require_engine
from auditor.checks.interface import check
from auditor.inventory.cli_env import ALL_USERS
from auditor.inventory.interface import CliUserEnv, Facts
from auditor.inventory.profiles import profile
from auditor.verdicts import CannotEvaluate, DoesNotApply, Finding, Status, finding


def _user_problems(entry: CliUserEnv, switches: tuple[str, ...]) -> list[str]:
    """What is missing for one user: a switch unset in every login file, or unset in a
    running CLI process (the live proof wins over the files)."""
    problems = [f"{entry.user}: {e}" for e in entry.errors if entry.home is None]
    if entry.home is None and entry.user != ALL_USERS:
        return problems
    problems += [
        f"{entry.user}: {name} is not set in any login file"
        for name in switches
        if not entry.settings.get(name, ("", ""))[0]
    ]
    for pid, values in sorted(entry.live.items()):
        problems += [
            f"{entry.user}: running CLI pid {pid} has no {name}"
            for name in switches
            if not values.get(name)
        ]
    return problems


def _evidence(entry: CliUserEnv, switches: tuple[str, ...]) -> list[tuple[str, str]]:
    label = "all users (system files)" if entry.user == ALL_USERS else f"user {entry.user}"
    out = []
    for name in switches:
        value, where = entry.settings.get(name, ("", ""))
        out.append((f"{label}: {name}", f"{value!r} in {where}" if value else "unset"))
    out += [(f"{label}: CLI pid {pid}", repr(dict(values))) for pid, values in entry.live.items()]
    return out


@check("OG-AGT-01")
def agent_tools_switched_off(facts: Facts) -> Finding:
    engine = require_engine(facts, running=False)
    switches = profile(engine.kind).agent_switches
    if not switches:
        raise DoesNotApply(f"the {engine.kind} engine's CLI has no agent tools")
    env = effective_environment(engine)
    if env is None:
        raise CannotEvaluate("neither the engine's environment nor its unit is readable")
    values, source = env
    problems = [f"service: {n} is not set ({source})" for n in switches if not values.get(n)]
    evidence = [(f"service: {n}", repr(values.get(n, "")) + f" ({source})") for n in switches]
    system = next((u for u in facts.cli_users if u.user == ALL_USERS), None)
    users = [u for u in facts.cli_users if u.user != ALL_USERS]
    system_wide = system is not None and all(system.settings.get(n, ("", ""))[0] for n in switches)
    if system is not None:
        evidence += _evidence(system, switches)
    for user in users:
        evidence += _evidence(user, switches)
        problems += _user_problems(user, switches)  # system files first, the user's last
    if not users and not system_wide:
        problems.append(
            "no CLI user configured (--cli-user) and the switches are not set system-wide "
            "(/etc/environment, /etc/profile.d): the agent runs as the developer"
        )
    if problems:
        return finding(
            Status.FAIL, "agent tools not switched off: " + "; ".join(problems), evidence
        )
    scope = ", ".join(u.user for u in users) or "all users (system-wide files)"
    return finding(
        Status.PASS,
        f"{' and '.join(switches)} set for the service and for {scope}",
        evidence,
    )

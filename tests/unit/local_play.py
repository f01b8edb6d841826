"""Run one role for real with ansible-playbook over a local connection, and read the result.

The role tests give each "host" its own variables and
throw-away directories in one run; this is the part they share.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")

_FATAL = re.compile(r"^fatal: \[(?P<host>[^\]]+)\]: FAILED! => (?P<result>\{.*\})$", re.MULTILINE)
_RECAP = re.compile(r"^(?P<host>\S+)\s+: ok=\d+.*?failed=(?P<failed>\d+)", re.MULTILINE)


def run_role(
    tmp: Path,
    role: str,
    inventory: dict[str, Any],
    hosts: str,
    env: dict[str, str],
    *,
    check: bool = False,
    diff: bool = False,
) -> str:
    """Apply role to every host of the inventory (in check mode, showing the diffs of what
    would change, when asked); returns ansible-playbook's output."""
    (tmp / "inventory.json").write_text(json.dumps(inventory))
    (tmp / "play.yml").write_text(
        f"- name: {role} under test\n  hosts: {hosts}\n  gather_facts: false\n"
        f"  roles:\n    - {role}\n"
    )
    full_env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-local"),
        **env,
    }
    result = subprocess.run(
        [
            str(ANSIBLE_PLAYBOOK), "-i", str(tmp / "inventory.json"), str(tmp / "play.yml"),
            *(["--check"] if check else []), *(["--diff"] if diff else []),
        ],
        capture_output=True, text=True, env=full_env, timeout=300, check=False,
    )  # fmt: skip
    assert "PLAY RECAP" in result.stdout, result.stdout + result.stderr
    return result.stdout


def fatal_results(output: str) -> dict[str, list[dict[str, Any]]]:
    """The results of every failed task, per host."""
    failures: dict[str, list[dict[str, Any]]] = {}
    for match in _FATAL.finditer(output):
        failures.setdefault(match["host"], []).append(json.loads(match["result"]))
    return failures


def recap_failed(output: str) -> dict[str, int]:
    """The PLAY RECAP's failed count per host."""
    recap = output.split("PLAY RECAP", 1)[1]
    return {match["host"]: int(match["failed"]) for match in _RECAP.finditer(recap)}

"""ansible-lint (production profile, offline) and --syntax-check over the roles and playbooks.

Both run as the venv's own commands with the repository's .ansible-lint and ansible.cfg. As
root they run inside a fresh network namespace (`unshare --net`: not even loopback is up), which
proves that linting never needs the network: no collection install, no version check.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PLAYBOOKS = sorted((REPO / "playbooks").glob("*.yml"))


def _offline(command: list[str]) -> list[str]:
    """Run without any network when we may create a network namespace."""
    if os.geteuid() == 0 and shutil.which("unshare"):
        return ["unshare", "--net", *command]
    return command


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "NO_COLOR": "1",
    }
    return subprocess.run(
        _offline(command),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_ansible_lint_production_profile_reports_nothing() -> None:
    targets = [path for path in ("roles", "playbooks") if any((REPO / path).iterdir())]
    result = _run(
        [str(VENV_BIN / "ansible-lint"), "--offline", "--strict", "--format=pep8", *targets]
    )
    # pep8 format: one "path:line:col: rule: message" line per violation on stdout.
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    assert "Profile 'production' was required, and it passed" in result.stderr, result.stderr


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=[p.name for p in PLAYBOOKS])
def test_playbook_syntax(playbook: Path) -> None:
    result = _run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "--syntax-check",
            "-i",
            str(REPO / "inventory.example"),
            str(playbook),
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_role_declares_its_arguments() -> None:
    roles = sorted(path for path in (REPO / "roles").iterdir() if path.is_dir())
    assert roles
    missing = [role.name for role in roles if not (role / "meta" / "argument_specs.yml").is_file()]
    assert not missing

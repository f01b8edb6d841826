"""The offgrid_egress role in check mode with diffs: the nftables ruleset and the unit drop-in it
would write for each engine's service user, and its refusal of an engine it does not know. The
ruleset is checked with the real `nft -c` (a parse, nothing is loaded); check mode writes nothing.
Loading and enforcing the rules is proved on the booted workstation."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.unit.local_play import fatal_results, recap_failed, run_role

pytestmark = pytest.mark.root  # the ruleset and drop-in belong to root, as on a workstation


def _host(tmp: Path, name: str, engine: str) -> dict[str, object]:
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "offgrid_engine": engine,
        "offgrid_egress_nft_file": str(tmp / name / "offgrid-egress.nft"),
    }


@pytest.fixture(scope="module")
def role_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("egress-role")
    engines = {"ollama": "ollama", "llamacpp": "llamacpp", "unknown-engine": "vllm"}
    hosts = {name: _host(tmp, name, engine) for name, engine in engines.items()}
    output = run_role(
        tmp, "offgrid_egress", {"all": {"hosts": hosts}}, "all", {"ANSIBLE_FORKS": "3"},
        check=True, diff=True,
    )  # fmt: skip
    return {
        "tmp": tmp,
        "output": output,
        "failed": recap_failed(output),
        "fatal": fatal_results(output),
    }


def _written(output: str, task: str, host: str) -> str:
    """What the task's diff for host adds (the would-be file, without the + signs)."""
    section = output.split(f"TASK [offgrid_egress : {task}", 1)[1].split("\nTASK [", 1)[0]
    block = section.split(f"changed: [{host}]", 1)[0].rsplit("+++ after", 1)[1]
    return "\n".join(line[1:] for line in block.splitlines() if line.startswith("+"))


@pytest.mark.parametrize(("host", "user"), [("ollama", "ollama"), ("llamacpp", "llamacpp")])
def test_ruleset_rejects_and_counts_the_engine_users_traffic(
    role_run: dict[str, Any], host: str, user: str
) -> None:
    assert role_run["failed"][host] == 0, role_run["fatal"].get(host)
    rules = _written(role_run["output"], "Write the per-user egress ruleset", host)
    assert f'meta skuid "{user}" oifname "lo" accept' in rules
    assert f'meta skuid "{user}" counter reject' in rules
    assert not (role_run["tmp"] / host).exists()  # check mode wrote nothing
    if shutil.which("nft"):
        # The real nft parses it (-c: check only); the user must exist for skuid, root does.
        ruleset = role_run["tmp"] / f"{host}.nft"
        ruleset.write_text(rules.replace(f'"{user}"', '"root"'))
        parsed = subprocess.run(
            ["nft", "-c", "-f", str(ruleset)], capture_output=True, text=True, check=False
        )
        assert parsed.returncode == 0, parsed.stderr


def test_engine_unit_drop_in_denies_every_address_but_loopback(role_run: dict[str, Any]) -> None:
    conf = _written(
        role_run["output"],
        "Deny the engine unit every address but loopback in egress.conf",
        "llamacpp",
    )
    assert re.search(r"^IPAddressDeny=any$", conf, re.MULTILINE), conf
    assert re.search(r"^IPAddressAllow=localhost$", conf, re.MULTILINE), conf


def test_unknown_engine_is_refused(role_run: dict[str, Any]) -> None:
    assert role_run["failed"]["unknown-engine"] == 1
    (result,) = role_run["fatal"]["unknown-engine"]
    assert "offgrid_egress_engine must be one of: ollama, llamacpp, got: vllm" in str(result["msg"])

"""The llama.cpp role's smoke generation and rollback, on the offline test workstation.

The workstation is provisioned from the test bundle; then site.yml runs again with a bundle whose
engine wheel (re-pinned, so it installs side by side) answers /v1/models but dies with SIGILL on
its first completion, as a build for instructions the CPU lacks does. The play must fail naming
the rollback, the `current` link must point at the install that served before, the new install
must still be on disk, and the engine must generate again."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from tests.host.bundle import TestBundle, with_crashing_engine
from tests.host.inhost import LLAMACPP_PORT, LLAMACPP_UNIT, provisioned_vars
from tests.host.workstation import SITE_PLAYBOOK, PlaybookRun, Workstation, booted

pytestmark = [pytest.mark.host, pytest.mark.root]

CURRENT = "/opt/offgrid/llamacpp/current"


@pytest.fixture(scope="module")
def machine(test_bundle: TestBundle) -> Iterator[Workstation]:
    with booted(f"ogr-{os.getpid()}") as ws:
        ws.playbook(SITE_PLAYBOOK, extra_vars=provisioned_vars(ws, test_bundle))
        yield ws


@pytest.fixture(scope="module")
def upgrade(
    machine: Workstation, test_bundle: TestBundle, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, PlaybookRun]:
    before = machine.run(f"readlink {CURRENT}").stdout.strip()
    crashing = with_crashing_engine(test_bundle, tmp_path_factory.mktemp("crash") / "bundle")
    run = machine.playbook(
        SITE_PLAYBOOK, extra_vars=provisioned_vars(machine, crashing), expect_failure=True
    )
    return before, run


def _complete(ws: Workstation) -> dict[str, object]:
    # The rollback restarted the engine just before the play failed: wait until it listens.
    ws.run(
        f"for i in $(seq 120); do curl -sf --noproxy '*' http://127.0.0.1:{LLAMACPP_PORT}/v1/models"
        " >/dev/null && exit 0; sleep 1; done; exit 1"
    )
    body = '{"model": "SmolLM2-135M-Instruct.Q4_1", "prompt": "def add(a, b):", "max_tokens": 4}'
    out = ws.run(
        f"curl -sf --noproxy '*' -H 'Content-Type: application/json' -d '{body}' "
        f"http://127.0.0.1:{LLAMACPP_PORT}/v1/completions"
    )
    loaded: dict[str, object] = json.loads(out.stdout)
    return loaded


def test_the_failed_smoke_generation_fails_the_play_naming_the_rollback(
    upgrade: tuple[str, PlaybookRun],
) -> None:
    before, run = upgrade
    assert "did not pass its health check" in run.output
    assert f"Rolled back to {before}." in run.output


def test_the_engine_died_of_the_illegal_instruction(
    machine: Workstation, upgrade: tuple[str, PlaybookRun]
) -> None:
    journal = machine.run(f"journalctl -u {LLAMACPP_UNIT} --no-pager", check=False).stdout
    assert "status=4/ILL" in journal


def test_current_points_at_the_previous_install_and_the_new_one_is_kept(
    machine: Workstation, upgrade: tuple[str, PlaybookRun]
) -> None:
    before, _ = upgrade
    assert machine.run(f"readlink {CURRENT}").stdout.strip() == before
    installs = machine.run("ls -1d /opt/offgrid/llamacpp/*-*/").stdout.split()
    assert len(installs) == 2 and f"{before}/" in installs


def test_the_previous_install_generates_again(
    machine: Workstation, upgrade: tuple[str, PlaybookRun]
) -> None:
    assert machine.run(f"systemctl is-active {LLAMACPP_UNIT}").stdout.strip() == "active"
    usage = _complete(machine)["usage"]
    assert isinstance(usage, dict) and int(usage["completion_tokens"]) > 0

"""Refuse before crashing, on the offline test workstation: a bundle whose llama.cpp build
record demands an instruction set this CPU lacks fails playbooks/site.yml in its read-only first
play, in check mode and for real, naming the missing flag, and the workstation is left exactly as
it was (nothing installed, nothing written)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.host.bundle import TestBundle, with_cpu_baseline
from tests.host.inhost import provisioned_vars
from tests.host.workstation import SITE_PLAYBOOK, PlaybookRun, Workstation, booted

pytestmark = [pytest.mark.host, pytest.mark.root]

# Instruction sets of recent x86-64 server CPUs; the workstation shares this machine's CPU.
CANDIDATES = ("amx_tile", "avx512_fp16", "amx_int8", "avx512_bf16", "avx512f")
# Everything a provisioning run would write into; /var/lib/systemd changes on its own.
WATCHED = "/etc /opt /usr /var/lib /var/cache /srv"


def _lacking() -> str:
    flags = next(
        set(line.split(":", 1)[1].split())
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("flags")
    )
    missing = [flag for flag in CANDIDATES if flag not in flags]
    if not missing:
        pytest.skip(f"this CPU has every one of {', '.join(CANDIDATES)}")
    return missing[0]


@pytest.fixture(scope="module")
def flag() -> str:
    return _lacking()


@pytest.fixture(scope="module")
def hostile(
    test_bundle: TestBundle, flag: str, tmp_path_factory: pytest.TempPathFactory
) -> TestBundle:
    return with_cpu_baseline(test_bundle, tmp_path_factory.mktemp("hostile") / "bundle", (flag,))


@pytest.fixture(scope="module")
def machine() -> Iterator[Workstation]:
    with booted(f"ogc-{os.getpid()}") as ws:
        ws.run("touch /run/offgrid-before-play")
        yield ws


def _changed_files(ws: Workstation) -> list[str]:
    listing = ws.run(
        f"find {WATCHED} -xdev -newer /run/offgrid-before-play -not -path '/var/lib/systemd/*' "
        "-print 2>/dev/null",
        check=False,
    )
    return [line for line in listing.stdout.splitlines() if line]


def _assert_refused(run: PlaybookRun, ws: Workstation, flag: str) -> None:
    assert f"This host's CPU lacks {flag}, which" in run.output, run.output[-4000:]
    assert "Nothing on the target was changed" in run.output
    # The refusal comes from the read-only first play; the provisioning play never starts.
    assert "PLAY [Provision the workstations]" not in run.output
    stats = run.stats[ws.name]
    assert (stats.failed, stats.changed) == (1, 0)


def test_check_mode_already_refuses_the_host(
    machine: Workstation, hostile: TestBundle, flag: str
) -> None:
    run = machine.playbook(
        SITE_PLAYBOOK, extra_vars=provisioned_vars(machine, hostile), check_mode=True,
        expect_failure=True,
    )  # fmt: skip
    _assert_refused(run, machine, flag)


def test_real_run_refuses_the_host_before_any_change(
    machine: Workstation, hostile: TestBundle, flag: str
) -> None:
    run = machine.playbook(
        SITE_PLAYBOOK, extra_vars=provisioned_vars(machine, hostile), expect_failure=True
    )
    _assert_refused(run, machine, flag)
    assert _changed_files(machine) == []
    absent = machine.run(
        "ls -d /opt/offgrid /etc/systemd/system/offgrid-llamacpp.service /var/cache/offgrid "
        "/etc/offgrid /var/lib/offgrid 2>&1",
        check=False,
    )
    assert absent.stdout.count("No such file or directory") == 5, absent.stdout

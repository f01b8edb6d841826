"""roles/offgrid_debs on the offline test workstation: Debian packages from the bundle
(`offgrid bundle add-debs` on this controller, the staging box) install with no network at all.
An altered .deb fails the play with nothing installed; check mode installs nothing; the real run
installs the requested package and the missing part of its closure at the pinned versions; a
second run changes nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.host.workstation import Workstation, booted

pytestmark = [pytest.mark.host, pytest.mark.root]

# Not in the workstation's base image, with dependencies that are not either (libjq1, libonig5).
PACKAGE = "jq"
OFFGRID = Path(sys.executable).with_name("offgrid")
PLAYBOOK = """\
- name: Install the bundle's Debian packages (offgrid_debs role test)
  hosts: workstations
  become: true
  roles:
    - role: offgrid_debs
"""


@pytest.fixture(scope="module")
def machine() -> Iterator[Workstation]:
    with booted(f"ogd-{os.getpid()}") as ws:
        yield ws


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("debs-bundle") / "bundle"
    if shutil.which("apt-get") is None:
        pytest.skip("add-debs needs a Debian controller")
    done = subprocess.run(
        [str(OFFGRID), "bundle", "add-debs", str(path), PACKAGE],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return path


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("playbook") / "debs.yml"
    path.write_text(PLAYBOOK)
    return path


def _pins(bundle: Path) -> dict[str, dict[str, object]]:
    lock = json.loads((bundle / "offgrid.lock.json").read_text())
    return {pin["name"]: pin for pin in lock["debs"]["packages"]}


def _installed(ws: Workstation, name: str) -> str:
    """The installed version of name, or '' when dpkg does not have it installed."""
    result = ws.run(f"dpkg-query -W -f '${{Version}} ${{db:Status-Abbrev}}' {name}", check=False)
    fields = result.stdout.split()
    return fields[0] if result.returncode == 0 and fields[1:2] == ["ii"] else ""


def _vars(bundle: Path) -> dict[str, object]:
    return {"offgrid_bundle_dir": str(bundle)}


def test_an_altered_deb_fails_the_play_and_installs_nothing(
    machine: Workstation, bundle: Path, playbook: Path, tmp_path: Path
) -> None:
    altered = tmp_path / "altered"
    shutil.copytree(bundle, altered)
    deb = altered / str(_pins(bundle)["libjq1"]["path"])
    data = bytearray(deb.read_bytes())
    data[len(data) // 2] ^= 0xFF
    deb.write_bytes(bytes(data))
    run = machine.playbook(playbook, extra_vars=_vars(altered), expect_failure=True)
    assert f"{deb.relative_to(altered)}: sha256" in run.output
    assert run.stats[machine.name].changed == 0
    assert _installed(machine, PACKAGE) == "" and _installed(machine, "libjq1") == ""


def test_check_mode_installs_nothing(machine: Workstation, bundle: Path, playbook: Path) -> None:
    machine.playbook(playbook, extra_vars=_vars(bundle), check_mode=True)
    assert _installed(machine, PACKAGE) == ""
    assert machine.run("test -e /var/cache/offgrid/debs", check=False).returncode != 0


def test_the_package_installs_offline_at_its_pinned_version(
    machine: Workstation, bundle: Path, playbook: Path
) -> None:
    run = machine.playbook(playbook, extra_vars=_vars(bundle))
    assert run.stats[machine.name].changed > 0
    pins = _pins(bundle)
    for name in (PACKAGE, "libjq1", "libonig5"):
        assert _installed(machine, name) == pins[name]["version"], name
    assert machine.run("echo '{\"a\": 1}' | jq .a").stdout.strip() == "1"
    assert machine.run("test -e /var/cache/offgrid/debs", check=False).returncode != 0


def test_a_second_run_changes_nothing(machine: Workstation, bundle: Path, playbook: Path) -> None:
    run = machine.playbook(playbook, extra_vars=_vars(bundle))
    assert run.stats[machine.name].changed == 0, run.changed_tasks()

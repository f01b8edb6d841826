"""Runs of site.yml that must leave a fresh workstation untouched: a corrupted bundle stops on
the controller, and a check run only reports. (This module runs before the `provisioned`
fixture changes the session's workstation.)"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.host.bundle import TestBundle, site_vars
from tests.host.workstation import SITE_PLAYBOOK, Workstation

pytestmark = [pytest.mark.host, pytest.mark.root]

# Everything the roles write lives under these; the journal and Ansible's own temp files do not.
WATCHED = "/etc /opt /usr /var/lib /var/cache /home"


def _corrupted_copy(bundle: TestBundle, dest: Path, relative: str) -> Path:
    """A hard-linked copy of the bundle with one file replaced (the original stays intact)."""
    shutil.copytree(bundle.path, dest, copy_function=os.link)
    victim = dest / relative
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.unlink()
    victim.write_bytes(bytes(data))
    return dest


def _changed_since_marker(ws: Workstation) -> list[str]:
    out = ws.run(
        f"find {WATCHED} -xdev -newer /root/offgrid-marker "
        "-not -path '/var/lib/systemd/*' -not -path '/var/cache/ldconfig/*' -print"
    ).stdout
    return out.split()


@pytest.mark.parametrize(
    "relative",
    ["models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf", "engines/llamacpp/wheelhouse/llama_cpp_python"],
    ids=["gguf", "engine-wheel"],
)
def test_corrupted_artifact_fails_before_the_target_changes(
    workstation: Workstation, test_bundle: TestBundle, tmp_path: Path, relative: str
) -> None:
    if relative.startswith("engines/"):
        wheelhouse = test_bundle.path / "engines/llamacpp/wheelhouse"
        relative = str(
            next(wheelhouse.glob("llama_cpp_python-*.whl")).relative_to(test_bundle.path)
        )
    corrupted = _corrupted_copy(test_bundle, tmp_path / "bundle", relative)
    workstation.run("touch /root/offgrid-marker && sleep 1")
    variables = {**site_vars(test_bundle), "offgrid_bundle_dir": str(corrupted)}
    run = workstation.playbook(SITE_PLAYBOOK, extra_vars=variables, expect_failure=True)
    assert run.stats[workstation.name].failed == 1
    assert run.stats[workstation.name].changed == 0
    assert "Nothing on the target was changed" in run.output
    assert Path(relative).name in run.output
    assert _changed_since_marker(workstation) == []


def test_check_run_on_a_fresh_host_passes_and_changes_nothing(
    workstation: Workstation, test_bundle: TestBundle
) -> None:
    assert workstation.run("test -e /opt/offgrid", check=False).returncode != 0, "not fresh"
    workstation.run("touch /root/offgrid-marker && sleep 1")
    run = workstation.playbook(SITE_PLAYBOOK, extra_vars=site_vars(test_bundle), check_mode=True)
    assert run.stats[workstation.name].failed == 0
    assert run.stats[workstation.name].changed > 0  # it reports what a real run would do
    assert _changed_since_marker(workstation) == []

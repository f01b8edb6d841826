"""Runs of site.yml that must leave a fresh workstation untouched: a corrupted or unauthentic
(unsigned, re-signed, modified-lock) bundle stops on the controller or, with the controller's
check skipped, on the target, and a check run only reports. (This module runs before the
`provisioned` fixture changes the session's workstation.)"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from auditor.models import signing
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


def _resigned_copy(bundle: TestBundle, dest: Path, how: str, tmp_path: Path) -> Path:
    """A copy of the signed bundle whose lock signature is missing, stale or someone else's."""
    shutil.copytree(bundle.path, dest, copy_function=os.link)
    lock, signature = dest / "offgrid.lock.json", dest / "offgrid.lock.json.sig"
    signature.unlink()
    if how == "modified-lock":
        shutil.copyfile(bundle.path / "offgrid.lock.json.sig", signature)
        data = lock.read_bytes()
        lock.unlink()
        lock.write_bytes(data.replace(b'"size": ', b'"size":  ', 1))  # one byte more
    elif how == "other-key":
        key = tmp_path / "stranger"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        signing.sign_lock(lock, key)
    return dest


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("unsigned", "no signature offgrid.lock.json.sig beside the lock"),
        ("modified-lock", "the lock changed after it was signed"),
        ("other-key", "does not allow"),
    ],
)
def test_unauthentic_bundle_stops_on_the_controller(
    workstation: Workstation, test_bundle: TestBundle, tmp_path: Path, how: str, reason: str
) -> None:
    bad = _resigned_copy(test_bundle, tmp_path / "bundle", how, tmp_path)
    workstation.run("touch /root/offgrid-marker && sleep 1")
    variables = {**site_vars(test_bundle), "offgrid_bundle_dir": str(bad)}
    run = workstation.playbook(SITE_PLAYBOOK, extra_vars=variables, expect_failure=True)
    assert run.stats[workstation.name].failed == 1
    assert run.stats[workstation.name].changed == 0
    assert reason in run.output
    assert _changed_since_marker(workstation) == []


def test_unauthentic_bundle_stops_on_the_target_when_the_controller_check_is_skipped(
    workstation: Workstation, test_bundle: TestBundle, tmp_path: Path
) -> None:
    bad = _resigned_copy(test_bundle, tmp_path / "bundle", "other-key", tmp_path)
    workstation.run("touch /root/offgrid-marker && sleep 1")
    variables = {
        **site_vars(test_bundle),
        "offgrid_bundle_dir": str(bad),
        "offgrid_bundle_controller_enabled": False,
    }
    run = workstation.playbook(SITE_PLAYBOOK, extra_vars=variables, expect_failure=True)
    assert run.stats[workstation.name].failed == 1
    assert "refuses the bundle" in run.output
    assert _changed_since_marker(workstation) == []

"""The offgrid_bundle role, run for real by ansible-playbook over a local connection: the
bundle lock's signature checked on the controller and again on the "workstation" (throw-away
directories), with the real ssh-keygen and offgrid. One run, one host per case."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from auditor.models import lockfile, signing
from tests.unit.local_play import REPO, fatal_results, recap_failed

pytestmark = pytest.mark.root  # writes root-owned files, as on a workstation

PLAY = """
- name: Controller side
  hosts: all
  gather_facts: false
  tasks:
    - name: Check the signature on the controller
      ansible.builtin.include_role:
        name: offgrid_bundle
        tasks_from: controller.yml
- name: Workstation side
  hosts: all
  gather_facts: false
  roles:
    - offgrid_bundle
"""


def _key(tmp: Path, name: str) -> tuple[Path, Path]:
    key = tmp / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    kind, blob = key.with_suffix(".pub").read_text().split()[:2]
    allowed = tmp / f"{name}.allowed_signers"
    allowed.write_text(f'{name}@offgrid namespaces="offgrid-bundle" {kind} {blob}\n')
    return key, allowed


def _bundle(path: Path, key: Path | None) -> Path:
    wheel = path / "auditor/wheelhouse/offgrid-0.1.0-py3-none-any.whl"
    wheel.parent.mkdir(parents=True)
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("auditor/data/cves.toml", "# the CVE table\n")
    pin = lockfile.FilePin(str(wheel.relative_to(path)), *_sha_size(wheel))
    lockfile.save(lockfile.Lock().with_auditor((pin,)), path / lockfile.LOCK_FILE)
    if key is not None:
        signing.sign_lock(path / lockfile.LOCK_FILE, key)
    return path


def _sha_size(path: Path) -> tuple[str, int]:
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


def _flip_a_byte(lock: Path) -> None:
    data = bytearray(lock.read_bytes())
    data[data.index(b'"size": ') + 8] ^= 0x01
    lock.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def role_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen (openssh-client) is not installed")
    tmp = tmp_path_factory.mktemp("bundle-role")
    staging, staging_signers = _key(tmp, "staging")
    other, other_signers = _key(tmp, "other")
    cases: dict[str, dict[str, Any]] = {
        "signed": {},
        "unsigned": {"sign": False},
        "other-key": {"sign_with": other},
        "modified-lock": {"modify": True},
        "bypass-modified": {"modify": True, "offgrid_bundle_controller_enabled": False},
        "bypass-unsigned": {"sign": False, "offgrid_bundle_controller_enabled": False},
        "no-signers": {"signers": ""},
        "override": {"sign": False, "signers": "", "offgrid_bundle_allow_unsigned": True},
        "provisioned-once": {"preprovisioned": other_signers},
    }
    hosts = {}
    for name, case in cases.items():
        root = tmp / name
        key = None if case.pop("sign", True) is False else case.pop("sign_with", staging)
        bundle = _bundle(root / "bundle", key)
        if case.pop("modify", False):
            _flip_a_byte(bundle / lockfile.LOCK_FILE)
        trust = root / "etc-offgrid"
        if (pre := case.pop("preprovisioned", None)) is not None:
            trust.mkdir()
            shutil.copy(pre, trust / "allowed_signers")
        hosts[name] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "offgrid_bundle_dir": str(bundle),
            "offgrid_bundle_allowed_signers": str(case.pop("signers", staging_signers)),
            "offgrid_bundle_trust_dir": str(trust),
            "offgrid_bundle_controller_offgrid": str(Path(sys.executable).with_name("offgrid")),
            **case,
        }
    (tmp / "inventory.json").write_text(json.dumps({"all": {"hosts": hosts}}))
    (tmp / "play.yml").write_text(PLAY)
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-local"),
    }
    result = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(tmp / "inventory.json"),
         str(tmp / "play.yml")],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert "PLAY RECAP" in result.stdout, result.stdout + result.stderr
    return tmp, result.stdout


def _message(output: str, host: str) -> str:
    (failure,) = fatal_results(output)[host]
    return str(failure.get("msg", ""))


def test_a_signed_bundle_passes_and_its_signature_lands_beside_the_lock(
    role_run: tuple[Path, str],
) -> None:
    tmp, output = role_run
    assert recap_failed(output)["signed"] == 0
    trust = tmp / "signed/etc-offgrid"
    signature = trust / "offgrid.lock.json.sig"
    assert signature.read_bytes() == (tmp / "signed/bundle/offgrid.lock.json.sig").read_bytes()
    assert (trust / "allowed_signers").read_text() == (tmp / "staging.allowed_signers").read_text()


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("unsigned", "no signature offgrid.lock.json.sig beside the lock"),
        ("other-key", "does not allow"),
        ("modified-lock", "the lock changed after it was signed"),
    ],
)
def test_the_controller_refuses_naming_the_cause(
    role_run: tuple[Path, str], host: str, reason: str
) -> None:
    tmp, output = role_run
    assert recap_failed(output)[host] == 1
    assert reason in _message(output, host)
    assert not (tmp / host / "etc-offgrid").exists()  # the workstation was not touched


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("bypass-modified", "refuses the bundle: Signature verification failed"),
        ("bypass-unsigned", "refuses the bundle: it is unsigned"),
        ("provisioned-once", "refuses the bundle: the lock's signature is not by a key in"),
    ],
)
def test_the_workstation_refuses_when_the_controller_check_is_bypassed(
    role_run: tuple[Path, str], host: str, reason: str
) -> None:
    tmp, output = role_run
    assert recap_failed(output)[host] == 1
    assert reason in _message(output, host), _message(output, host)
    assert not (tmp / host / "etc-offgrid/offgrid.lock.json.sig").exists()
    if host != "provisioned-once":  # a refusal leaves a fresh workstation as it was
        assert not (tmp / host / "etc-offgrid").exists()


def test_allowed_signers_are_required_unless_unsigned_is_allowed(
    role_run: tuple[Path, str],
) -> None:
    tmp, output = role_run
    assert "offgrid_bundle_allow_unsigned" in _message(output, "no-signers")
    assert recap_failed(output)["override"] == 0
    assert not (tmp / "override/etc-offgrid").exists()


def test_the_provisioned_allowed_signers_are_never_replaced(role_run: tuple[Path, str]) -> None:
    tmp, _ = role_run
    kept = (tmp / "provisioned-once/etc-offgrid/allowed_signers").read_text()
    assert kept == (tmp / "other.allowed_signers").read_text()


def test_a_second_run_changes_nothing(role_run: tuple[Path, str]) -> None:
    tmp, _ = role_run
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-local"),
    }
    again = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(tmp / "inventory.json"),
         "--limit", "signed", str(tmp / "play.yml")],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    recap = again.stdout.split("PLAY RECAP", 1)[1]
    assert "changed=0" in recap and "failed=0" in recap, again.stdout[-3000:]

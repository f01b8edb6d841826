"""`offgrid bundle sign` and `bundle verify --allowed-signers` with the real ssh-keygen: every
way a bundle can fail to be authentic has its own one-line reason and exit code."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from importlib import resources
from pathlib import Path

import pytest

from auditor.cli import main
from auditor.console import Console
from auditor.models import lockfile, signing
from auditor.report.sshsig import NAMESPACE as HISTORY_NAMESPACE

PACKAGE_FILE = "auditor/__init__.py"


def _run(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def _keypair(directory: Path, name: str) -> tuple[Path, str]:
    key = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True
    )
    kind, blob = key.with_suffix(".pub").read_text().split()[:2]
    return key, f"{kind} {blob}"


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen (openssh-client) is not installed")
    staging, staging_pub = _keypair(tmp_path, "staging")
    other, other_pub = _keypair(tmp_path, "other")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f'staging@offgrid namespaces="offgrid-bundle" {staging_pub}\n')
    others = tmp_path / "other_signers"
    others.write_text(f"other@offgrid {other_pub}\n")
    return {"staging": staging, "other": other, "allowed": allowed, "others": others}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A bundle whose auditor wheelhouse holds one wheel."""
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    with zipfile.ZipFile(wheelhouse / "offgrid-0.1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr(PACKAGE_FILE, resources.files("auditor").joinpath("__init__.py").read_text())
    root = tmp_path / "bundle"
    assert _run("bundle", "add-auditor", root, wheelhouse)[0] == 0
    return root


def _lock(bundle: Path) -> Path:
    return bundle / lockfile.LOCK_FILE


def test_signed_bundle_verifies_and_names_the_key(bundle: Path, keys: dict[str, Path]) -> None:
    code, out, _ = _run("bundle", "sign", bundle, "--key", keys["staging"])
    assert code == 0, out
    signature = signing.signature_path(_lock(bundle))
    assert signature.is_file() and signature.stat().st_mode & 0o777 == 0o644
    fingerprint = signing.parse_signature(signature.read_bytes()).fingerprint
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", f"{keys['staging']}.pub"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert fingerprint in listed.stdout  # the same fingerprint ssh-keygen -l shows
    code, out, _ = _run("bundle", "verify", bundle, "--allowed-signers", keys["allowed"])
    assert code == 0
    assert f"signature: lock signed by staging@offgrid (key {fingerprint})" in out
    assert "bundle matches its lock" in out


def test_the_lock_pins_the_auditor_wheel(bundle: Path) -> None:
    lock = lockfile.load(_lock(bundle))
    (wheel,) = lock.auditor
    with zipfile.ZipFile(bundle / wheel.path) as archive:
        assert PACKAGE_FILE in archive.namelist()


def test_unsigned_bundle_is_refused(bundle: Path, keys: dict[str, Path]) -> None:
    code, out, err = _run("bundle", "verify", bundle, "--allowed-signers", keys["allowed"])
    assert code == 1
    assert "refused: no signature offgrid.lock.json.sig beside the lock" in err
    assert "verify bundle" not in out  # nothing else is trusted before the signature


def test_signature_by_another_key_is_refused(bundle: Path, keys: dict[str, Path]) -> None:
    assert _run("bundle", "sign", bundle, "--key", keys["other"])[0] == 0
    code, _, err = _run("bundle", "verify", bundle, "--allowed-signers", keys["allowed"])
    assert code == 1
    assert "refused: signed by key SHA256:" in err and "does not allow" in err


def test_one_modified_byte_in_the_lock_is_refused(bundle: Path, keys: dict[str, Path]) -> None:
    assert _run("bundle", "sign", bundle, "--key", keys["staging"])[0] == 0
    lock = _lock(bundle)
    data = bytearray(lock.read_bytes())
    data[data.index(b'"size": ') + 8] ^= 0x01  # one digit of a pinned size
    lock.write_bytes(bytes(data))
    code, _, err = _run("bundle", "verify", bundle, "--allowed-signers", keys["allowed"])
    assert code == 1
    assert "does not match the lock: the lock changed after it was signed" in err


def test_one_modified_byte_in_the_wheel_fails_the_signed_bundle(
    bundle: Path, keys: dict[str, Path]
) -> None:
    assert _run("bundle", "sign", bundle, "--key", keys["staging"])[0] == 0
    (wheel,) = lockfile.load(_lock(bundle)).auditor
    path = bundle / wheel.path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    code, out, _ = _run("bundle", "verify", bundle, "--allowed-signers", keys["allowed"])
    assert code == 1
    assert "signature: lock signed by staging@offgrid" in out
    assert "bundle does NOT match its lock" in out and wheel.path in out


def test_a_signature_for_another_namespace_is_refused(bundle: Path, keys: dict[str, Path]) -> None:
    done = subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-n", HISTORY_NAMESPACE, "-f", str(keys["staging"])],
        input=_lock(bundle).read_bytes(),
        capture_output=True,
        check=True,
    )
    signing.signature_path(_lock(bundle)).write_bytes(done.stdout)
    code, _, err = _run("bundle", "verify", bundle, "--allowed-signers", keys["allowed"])
    assert code == 1 and f"signs for namespace '{HISTORY_NAMESPACE}'" in err


def test_a_garbage_signature_is_refused(bundle: Path, keys: dict[str, Path]) -> None:
    signing.signature_path(_lock(bundle)).write_text("not a signature\n")
    code, _, err = _run("bundle", "verify", bundle, "--allowed-signers", keys["allowed"])
    assert code == 1 and "is not an SSH signature" in err


def test_sign_refuses_a_bundle_that_does_not_match_its_lock(
    bundle: Path, keys: dict[str, Path]
) -> None:
    (wheel,) = lockfile.load(_lock(bundle)).auditor
    (bundle / wheel.path).write_bytes(b"swapped")
    code, _, err = _run("bundle", "sign", bundle, "--key", keys["staging"])
    assert code == 1 and "not signed: the bundle does not match its lock" in err
    assert not signing.signature_path(_lock(bundle)).exists()


def test_bad_input_is_one_line_and_exit_2(bundle: Path, keys: dict[str, Path]) -> None:
    code, _, err = _run("bundle", "verify", bundle, "--allowed-signers", bundle / "absent")
    assert code == 2 and "allowed signers" in err and "Traceback" not in err
    code, _, err = _run("bundle", "sign", bundle, "--key", bundle / "absent")
    assert code == 2 and "no such file" in err


def test_inspect_without_allowed_signers_reports_the_key(
    bundle: Path, keys: dict[str, Path]
) -> None:
    assert signing.inspect_lock_signature(_lock(bundle)).status == "unsigned"
    assert _run("bundle", "sign", bundle, "--key", keys["staging"])[0] == 0
    found = signing.inspect_lock_signature(_lock(bundle))
    assert found.ok and found.fingerprint and found.fingerprint.startswith("SHA256:")


def test_signature_only_checks_the_signature_and_no_file(
    bundle: Path, keys: dict[str, Path]
) -> None:
    assert _run("bundle", "sign", bundle, "--key", keys["staging"])[0] == 0
    (wheel,) = lockfile.load(_lock(bundle)).auditor
    (bundle / wheel.path).write_bytes(b"swapped after signing")
    argv = ("bundle", "verify", bundle, "--allowed-signers", keys["allowed"], "--signature-only")
    code, out, _ = _run(*argv)
    assert code == 0 and "signature: lock signed by staging@offgrid" in out
    assert "bundle matches" not in out and "does NOT match" not in out
    code, _, err = _run("bundle", "verify", bundle, "--signature-only")
    assert code == 2 and "needs --allowed-signers" in err

"""The report records which key signed the bundle lock an audit runs with: fingerprint as
ssh-keygen prints it, namespace, principal, and whether the audit's allowed signers vouch
for it, with the real ssh-keygen, a real signed bundle and a real audit run."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from auditor.cli import main
from auditor.console import Console
from auditor.models import lockfile, signing
from auditor.report import markdown
from auditor.report.html import render as render_html
from auditor.report.load import from_dict
from auditor.report.validate import validate

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")


def _run(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def _keypair(directory: Path, name: str) -> tuple[Path, str]:
    key = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True
    )
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", f"{key}.pub"], capture_output=True, text=True, check=True
    )
    return key, listed.stdout.split()[1]  # "256 SHA256:… comment (ED25519)"


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A bundle signed by the staging key, allowed signers for it and for another key."""
    root = tmp_path_factory.mktemp("signed")
    wheelhouse = root / "wheelhouse"
    wheelhouse.mkdir()
    with zipfile.ZipFile(wheelhouse / "offgrid-0.1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr(
            "auditor/__init__.py", resources.files("auditor").joinpath("__init__.py").read_text()
        )
    bundle = root / "bundle"
    assert _run("bundle", "add-auditor", bundle, wheelhouse)[0] == 0
    staging, fingerprint = _keypair(root, "staging")
    other, _ = _keypair(root, "other")
    assert _run("bundle", "sign", bundle, "--key", staging)[0] == 0
    allowed = root / "allowed_signers"
    pub = " ".join(Path(f"{staging}.pub").read_text().split()[:2])
    allowed.write_text(f'staging@offgrid namespaces="offgrid-bundle" {pub}\n')
    others = root / "other_signers"
    others.write_text("other@offgrid " + " ".join(Path(f"{other}.pub").read_text().split()[:2]))
    lock = bundle / lockfile.LOCK_FILE
    return {"lock": lock, "fingerprint": fingerprint, "allowed": allowed, "others": others,
            "root": root}  # fmt: skip


def test_verified_signer_names_key_and_principal(signed: dict[str, Any]) -> None:
    fact = signing.signer_fact(signed["lock"], signed["allowed"])
    assert fact.status == "verified", fact.reason
    assert fact.fingerprint == signed["fingerprint"]  # exactly as ssh-keygen -l prints it
    assert (fact.principal, fact.namespace) == ("staging@offgrid", "offgrid-bundle")
    assert fact.allowed_signers == str(signed["allowed"])


def test_without_allowed_signers_the_signer_is_unverifiable(signed: dict[str, Any]) -> None:
    fact = signing.signer_fact(signed["lock"], None)
    assert (fact.status, fact.fingerprint) == ("unverifiable", signed["fingerprint"])
    assert fact.principal is None and "no allowed signers are configured" in fact.reason
    missing = signing.signer_fact(signed["lock"], signed["root"] / "nope")
    assert missing.status == "unverifiable" and "missing" in missing.reason


def test_a_key_the_allowed_signers_do_not_list_is_not_allowed(signed: dict[str, Any]) -> None:
    fact = signing.signer_fact(signed["lock"], signed["others"])
    assert (fact.status, fact.principal) == ("not-allowed", None)
    assert signed["fingerprint"] in fact.reason


def test_unsigned_and_changed_locks_are_said_plainly(
    signed: dict[str, Any], tmp_path: Path
) -> None:
    lock = tmp_path / lockfile.LOCK_FILE
    lock.write_bytes(signed["lock"].read_bytes())
    fact = signing.signer_fact(lock, signed["allowed"])
    assert (fact.status, fact.fingerprint) == ("unsigned", None)
    signature = signing.signature_path(signed["lock"]).read_bytes()
    signing.signature_path(lock).write_bytes(signature)
    lock.write_bytes(lock.read_bytes().replace(b"{", b"{ ", 1))  # one byte more
    fact = signing.signer_fact(lock, signed["allowed"])
    assert fact.status == "mismatch" and "changed after it was signed" in fact.reason


@pytest.fixture(scope="module")
def audited(signed: dict[str, Any]) -> tuple[dict[str, Any], Path]:
    """A real audit run with the signed lock and the allowed signers, into a history."""
    out = signed["root"] / "report.json"
    history = signed["root"] / "history"
    (signed["root"] / "empty.toml").write_text("")  # not this machine's /etc/offgrid settings
    code, _, err = _run(
        "audit", "--engine", "llamacpp", "--config", signed["root"] / "empty.toml",
        "--lock", signed["lock"], "--allowed-signers", signed["allowed"],
        "--format", "json", "--output", out, "--history", history,
    )  # fmt: skip
    assert code in (1, 3), err  # no engine runs here: controls fail or are errors
    return json.loads(out.read_text()), history


def test_audit_report_records_the_signer(
    audited: tuple[dict[str, Any], Path], signed: dict[str, Any]
) -> None:
    data, _ = audited
    assert validate(data) == []
    signature = data["integrity"]["signature"]
    assert signature["status"] == "verified"
    assert signature["fingerprint"] == signed["fingerprint"]
    assert signature["principal"] == "staging@offgrid"
    report = from_dict(data)
    assert report.integrity is not None and report.integrity.signature is not None
    line = f"verified: signed by staging@offgrid (key {signed['fingerprint']})"
    assert line in render_html(report) and line in markdown.render(report)


def test_evidence_pack_shows_the_signer_per_host(
    audited: tuple[dict[str, Any], Path], signed: dict[str, Any]
) -> None:
    data, history = audited
    night = data["finished_at"][:10]
    out = signed["root"] / "pack"
    _run("report", "evidence", history, "--since", night, "--until", night, "--out", out)
    summary = json.loads((out / "evidence.json").read_text())
    (host,) = summary["hosts"]
    (signer,) = host["bundle_signers"]
    assert (signer["status"], signer["fingerprint"], signer["principal"]) == (
        "verified", signed["fingerprint"], "staging@offgrid",
    )  # fmt: skip
    assert signer["nights"] == [night]
    index = (out / "index.html").read_text()
    assert f"signed by staging@offgrid (key {signed['fingerprint']}), verified" in index

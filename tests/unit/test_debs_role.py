"""The offgrid_debs role's pre-flight, run for real by ansible-playbook in check mode.

A local connection, one check-mode run, five "hosts", each with its own bundle (placeholder
.deb files pinned in a lock's debs section) and its own os-release file: a bundle for the
host's release, one for another release, an altered .deb, a package the bundle does not carry
and a bundle without Debian packages. Check mode: dpkg and apt are only asked, never changed
(the offline install itself runs on the booted workstation, tests/host/test_debs_role.py).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from auditor.models import lockfile
from tests.unit.local_play import fatal_results, recap_failed, run_role

pytestmark = pytest.mark.root  # the role stages root-owned files, as on a workstation

ARCH = subprocess.run(
    ["dpkg", "--print-architecture"], capture_output=True, text=True, check=False
).stdout.strip()
# Names no Debian archive uses, so dpkg on this machine reports them not installed.
PACKAGES = ("offgrid-test-tool", "liboffgrid-test0")


def _bundle(path: Path, release: str = "bookworm", debs: bool = True) -> Path:
    path.mkdir(parents=True)
    lock = lockfile.Lock()
    if debs:
        pins = []
        for name in PACKAGES:
            deb = path / "debs" / f"{name}_1.0-1_{ARCH}.deb"
            deb.parent.mkdir(exist_ok=True)
            deb.write_bytes(f"placeholder package {name}".encode())
            digest = hashlib.sha256(deb.read_bytes()).hexdigest()
            rel = deb.relative_to(path).as_posix()
            pins.append(lockfile.DebPin(name, "1.0-1", ARCH, rel, digest, deb.stat().st_size))
        lock = lock.with_debs(lockfile.DebSet(release, ARCH, PACKAGES[:1], tuple(pins)))
    lockfile.save(lock, path / lockfile.LOCK_FILE)
    return path


def _os_release(path: Path, codename: str) -> str:
    path.write_text(f'PRETTY_NAME="Debian GNU/Linux"\nVERSION_CODENAME={codename}\nID=debian\n')
    return str(path)


def _host(tmp: Path, name: str, bundle: Path, **variables: object) -> dict[str, object]:
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "offgrid_bundle_dir": str(bundle),
        "offgrid_debs_stage_dir": str(tmp / name / "stage"),
        "offgrid_debs_os_release_path": _os_release(tmp / f"{name}.os-release", "bookworm"),
        **variables,
    }


@pytest.fixture(scope="module")
def role_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("debs-role")
    good = _bundle(tmp / "good")
    altered = _bundle(tmp / "altered")
    (altered / "debs" / f"{PACKAGES[1]}_1.0-1_{ARCH}.deb").write_bytes(b"altered")
    hosts = {
        "matching": _host(tmp, "matching", good),
        "other-release": _host(tmp, "other-release", _bundle(tmp / "trixie", release="trixie")),
        "altered-deb": _host(tmp, "altered-deb", altered),
        "unknown-package": _host(tmp, "unknown-package", good, offgrid_debs_packages=["nginx"]),
        "no-debs": _host(tmp, "no-debs", _bundle(tmp / "none", debs=False)),
    }
    output = run_role(
        tmp, "offgrid_debs", {"all": {"hosts": hosts}}, "all", {"ANSIBLE_FORKS": "5"}, check=True
    )
    messages = {
        host: [str(result.get("msg")) for result in results]
        for host, results in fatal_results(output).items()
    }
    return tmp, {"messages": messages, "failed": recap_failed(output), "output": output}


Run = tuple[Path, dict[str, Any]]


def _refused(run: dict[str, Any], host: str) -> str:
    assert run["failed"][host] == 1, run["output"]
    (message,) = run["messages"][host]
    return message


def test_a_bundle_for_the_hosts_release_would_install_its_missing_packages(role_run: Run) -> None:
    tmp, run = role_run
    assert run["failed"]["matching"] == 0, run["messages"].get("matching")
    for name in PACKAGES:  # both missing here: both would be copied
        assert re.search(
            rf"changed: \[matching\] => \(item={name}_1.0-1_{ARCH}.deb\)", run["output"]
        )
    assert not (tmp / "matching").exists()  # check mode staged nothing


def test_a_bundle_for_another_release_is_refused(role_run: Run) -> None:
    _, run = role_run
    message = _refused(run, "other-release")
    assert f"are for trixie/{ARCH}, this host runs bookworm/{ARCH}" in message


def test_an_altered_deb_is_refused_on_the_controller(role_run: Run) -> None:
    _, run = role_run
    message = _refused(run, "altered-deb")
    assert f"debs/{PACKAGES[1]}_1.0-1_{ARCH}.deb: 7 bytes, pinned" in message


def test_a_package_the_bundle_does_not_carry_is_refused(role_run: Run) -> None:
    _, run = role_run
    assert "pins no Debian package nginx" in _refused(run, "unknown-package")


def test_a_bundle_without_debian_packages_installs_nothing_and_says_so(role_run: Run) -> None:
    _, run = role_run
    assert run["failed"]["no-debs"] == 0
    assert re.search(r'ok: \[no-debs\] => \{\s*"msg": "[^"]*has no debs section', run["output"])

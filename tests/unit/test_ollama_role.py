"""The offgrid_ollama role's pre-flight and install, run for real by ansible-playbook.

A local connection into throw-away directories (the install root, command link and staging
directory of each "host" live under tmp_path; the user, unit and service concerns are switched
off, the booted-workstation test covers those). One run, nine hosts, each with its own
variables, against bundles holding the Ollama release STAND-IN tarballs:
pins from the lock file, pins from variables, a wrong pin, no pin at all, a public bind
address (refused, then explicitly allowed), a name that only looks like loopback, a
prompt-leaking environment variable, and the older .tgz release format.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from auditor.models import lockfile
from tests.standins import ollama_release_standin
from tests.standins.ollama_release_standin import StandinRelease
from tests.unit.local_play import fatal_results, recap_failed, run_role

LOCKED = "0.17.1"

pytestmark = pytest.mark.root  # installs root-owned directories, as on a workstation


def _locked_bundle(path: Path) -> dict[str, StandinRelease]:
    releases = {
        LOCKED: ollama_release_standin.build_into_bundle(path, LOCKED),
        "0.17.2": ollama_release_standin.build_into_bundle(path, "0.17.2"),
        "tgz": ollama_release_standin.build_into_bundle(path, "0.17.3", compression="tgz"),
    }
    locked = releases[LOCKED]
    pin = lockfile.EnginePin(
        name="ollama",
        version=LOCKED,
        kind="tarball",
        artifacts=(
            lockfile.FilePin(
                str(locked.path.relative_to(path)), locked.sha256, locked.path.stat().st_size
            ),
        ),
        binaries=(),
    )
    lockfile.save(lockfile.Lock().with_engine(pin), path / lockfile.LOCK_FILE)
    return releases


def _host(tmp: Path, name: str, bundle: Path, **variables: object) -> dict[str, object]:
    root = tmp / name
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "offgrid_bundle_dir": str(bundle),
        "offgrid_ollama_install_root": str(root / "opt/ollama"),
        "offgrid_ollama_bin_link": str(root / "ollama"),
        "offgrid_ollama_stage_dir": str(root / "stage"),
        "offgrid_ollama_user_enabled": False,
        "offgrid_ollama_config_enabled": False,
        "offgrid_ollama_service_enabled": False,
        **variables,
    }


@pytest.fixture(scope="module")
def role_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, Any], dict[str, StandinRelease]]:
    tmp = tmp_path_factory.mktemp("ollama-role")
    releases = _locked_bundle(tmp / "bundle")
    unlocked = tmp / "bundle-without-lock"
    ollama_release_standin.build_into_bundle(unlocked, LOCKED)
    bundle = tmp / "bundle"
    hosts = {
        "pins-from-lock": _host(tmp, "pins-from-lock", bundle),
        "pins-from-variables": _host(
            tmp, "pins-from-variables", bundle,
            offgrid_ollama_version="0.17.2", offgrid_ollama_sha256=releases["0.17.2"].sha256,
        ),
        "wrong-pin": _host(tmp, "wrong-pin", bundle, offgrid_ollama_sha256="f" * 64),
        "no-pin": _host(tmp, "no-pin", unlocked),
        "public-bind": _host(tmp, "public-bind", bundle, offgrid_ollama_host="0.0.0.0"),
        "lookalike-bind": _host(
            tmp, "lookalike-bind", bundle, offgrid_ollama_host="127.0.0.1.example"
        ),
        "public-bind-allowed": _host(
            tmp, "public-bind-allowed", bundle,
            offgrid_ollama_host="0.0.0.0", offgrid_ollama_allow_non_loopback=True,
        ),
        "leaky-env": _host(
            tmp, "leaky-env", bundle, offgrid_ollama_environment_extra={"OLLAMA_DEBUG": "2"}
        ),
        "tgz-release": _host(
            tmp, "tgz-release", bundle,
            offgrid_ollama_version="0.17.3", offgrid_ollama_sha256=releases["tgz"].sha256,
            offgrid_ollama_archive="ollama-linux-amd64.tgz",
        ),
    }  # fmt: skip
    output = run_role(
        tmp, "offgrid_ollama", {"all": {"hosts": hosts}}, "all", {"ANSIBLE_FORKS": "8"}
    )
    return tmp, _parse(output), releases


def _parse(output: str) -> dict[str, Any]:
    messages = {
        host: [str(result.get("msg")) for result in results]
        for host, results in fatal_results(output).items()
    }
    return {"messages": messages, "failed": recap_failed(output), "output": output}


def _active(tmp: Path, host: str) -> str:
    return os.readlink(tmp / host / "opt/ollama/current").rsplit("/", 1)[-1]


def _marker(tmp: Path, host: str, version: str) -> str:
    return (tmp / host / "opt/ollama" / version / ".offgrid-release.sha256").read_text().split()[0]


Run = tuple[Path, dict[str, Any], dict[str, StandinRelease]]


def test_pins_come_from_the_lock_file_when_no_variable_sets_them(role_run: Run) -> None:
    tmp, run, releases = role_run
    assert run["failed"]["pins-from-lock"] == 0, run["messages"].get("pins-from-lock")
    assert _active(tmp, "pins-from-lock") == LOCKED
    assert _marker(tmp, "pins-from-lock", LOCKED) == releases[LOCKED].sha256
    link = tmp / "pins-from-lock" / "ollama"
    assert os.readlink(link) == str(tmp / "pins-from-lock/opt/ollama/current/bin/ollama")
    version = subprocess.run([str(link), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"ollama version is {LOCKED}"
    assert not any((tmp / "pins-from-lock" / "stage").iterdir())  # staged tarball removed


def test_variables_override_the_lock_file(role_run: Run) -> None:
    tmp, run, releases = role_run
    assert run["failed"]["pins-from-variables"] == 0
    assert _active(tmp, "pins-from-variables") == "0.17.2"
    assert _marker(tmp, "pins-from-variables", "0.17.2") == releases["0.17.2"].sha256


def test_wrong_pin_is_refused_on_the_controller_before_anything_is_written(role_run: Run) -> None:
    tmp, run, releases = role_run
    (message,) = run["messages"]["wrong-pin"]
    assert f"sha256 {releases[LOCKED].sha256} does not match the pinned {'f' * 64}" in message
    assert not (tmp / "wrong-pin").exists()


def test_no_pin_at_all_is_refused(role_run: Run) -> None:
    tmp, run, _ = role_run
    (message,) = run["messages"]["no-pin"]
    assert "No valid Ollama pin" in message
    assert not (tmp / "no-pin").exists()


def test_public_bind_address_is_refused_unless_explicitly_allowed(role_run: Run) -> None:
    tmp, run, _ = role_run
    (message,) = run["messages"]["public-bind"]
    assert "0.0.0.0 is not a loopback address" in message
    assert not (tmp / "public-bind").exists()
    # A name that merely starts like a loopback address may resolve anywhere.
    (message,) = run["messages"]["lookalike-bind"]
    assert "127.0.0.1.example is not a loopback address" in message
    assert run["failed"]["public-bind-allowed"] == 0
    assert _active(tmp, "public-bind-allowed") == LOCKED


def test_prompt_leaking_environment_is_refused(role_run: Run) -> None:
    tmp, run, _ = role_run
    (message,) = run["messages"]["leaky-env"]
    assert "may not set OLLAMA_DEBUG" in message
    assert not (tmp / "leaky-env").exists()


def test_older_tgz_release_format_installs(role_run: Run) -> None:
    tmp, run, releases = role_run
    assert run["failed"]["tgz-release"] == 0
    assert _active(tmp, "tgz-release") == "0.17.3"
    assert _marker(tmp, "tgz-release", "0.17.3") == releases["tgz"].sha256

"""The offgrid_auditor role in check mode with diffs, run for real by ansible-playbook.

A local connection, one check-mode run, four "hosts", each with its own bundle (placeholder
wheels pinned in a lock's auditor section): pins from the lock, a lock without a pin for the
offgrid wheel, a wheelhouse with a wheel the lock does not pin, and pins from variables that
the wheels do not match. The settings file it would write is read from the diff; check mode
and throw-away directories: nothing is written.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import pytest

from auditor.models import lockfile
from tests.unit.local_play import fatal_results, recap_failed, run_role

pytestmark = pytest.mark.root  # the install and settings belong to root, as on a workstation

WHEELS = ("offgrid-0.1.0-py3-none-any.whl", "rich-13.9.4-py3-none-any.whl")


def _bundle(path: Path, pinned: tuple[str, ...] = WHEELS, extra: str | None = None) -> Path:
    wheelhouse = path / "auditor/wheelhouse"
    wheelhouse.mkdir(parents=True)
    for name in WHEELS + ((extra,) if extra else ()):
        (wheelhouse / name).write_bytes(f"placeholder {name}".encode())
    pins = tuple(
        lockfile.FilePin(
            f"auditor/wheelhouse/{name}",
            hashlib.sha256((wheelhouse / name).read_bytes()).hexdigest(),
            (wheelhouse / name).stat().st_size,
        )
        for name in pinned
    )
    lockfile.save(lockfile.Lock().with_auditor(pins), path / lockfile.LOCK_FILE)
    return path


def _host(tmp: Path, name: str, bundle: Path, **variables: object) -> dict[str, object]:
    root = tmp / name
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "offgrid_bundle_dir": str(bundle),
        "offgrid_engine": "llamacpp",
        "offgrid_auditor_install_root": str(root / "opt"),
        "offgrid_auditor_bin_link": str(root / "offgrid"),
        "offgrid_auditor_stage_dir": str(root / "stage"),
        "offgrid_auditor_config_dir": str(root / "etc"),
        "offgrid_auditor_report_dir": str(root / "reports"),
        "offgrid_auditor_history_dir": str(root / "history"),
        "offgrid_auditor_egress_probe": "10.213.0.1:9",
        **variables,
    }


@pytest.fixture(scope="module")
def role_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("auditor-role")
    good = _bundle(tmp / "good")
    hosts = {
        # an unsealed engine (offgrid_seal_enabled=false): the seal is not required
        "pins-from-lock": _host(tmp, "pins-from-lock", good, offgrid_seal_enabled=False),
        # nothing said about the seal: the role follows its default (sealed)
        "seal-default": _host(tmp, "seal-default", good),
        "no-offgrid-pin": _host(tmp, "no-offgrid-pin", _bundle(tmp / "nopin", WHEELS[1:])),
        "unpinned-wheel": _host(
            tmp, "unpinned-wheel", _bundle(tmp / "extra", extra="evil-1.0-py3-none-any.whl")
        ),
        "sealed": _host(
            tmp, "sealed", good, offgrid_auditor_engine_namespaces=True,
            offgrid_auditor_require_sealed=True,
        ),
        "wrong-variable-pin": _host(
            tmp, "wrong-variable-pin", good,
            offgrid_auditor_wheel_sha256={WHEELS[0]: "0" * 64, WHEELS[1]: "1" * 64},
        ),
        "textfile": _host(
            tmp, "textfile", good, offgrid_auditor_textfile_enabled=True,
            offgrid_auditor_textfile_dir=str(tmp / "textfile" / "node-exporter"),
            offgrid_auditor_textfile_group="root",
        ),
        "textfile-no-group": _host(
            tmp, "textfile-no-group", good, offgrid_auditor_textfile_enabled=True,
            offgrid_auditor_textfile_group="offgrid-no-such-group",
        ),
    }  # fmt: skip
    output = run_role(
        tmp, "offgrid_auditor", {"all": {"hosts": hosts}}, "all", {"ANSIBLE_FORKS": "6"},
        check=True, diff=True,
    )  # fmt: skip
    messages = {
        host: [str(result.get("msg")) for result in results]
        for host, results in fatal_results(output).items()
    }
    return {"tmp": tmp, "output": output, "failed": recap_failed(output), "messages": messages}


def _refused(run: dict[str, Any], host: str) -> str:
    assert run["failed"][host] == 1, run["output"]
    (message,) = run["messages"][host]
    return message


def test_pins_from_the_lock_pass_and_the_settings_name_engine_lock_and_probe(
    role_run: dict[str, Any],
) -> None:
    assert role_run["failed"]["pins-from-lock"] == 0, role_run["messages"].get("pins-from-lock")
    section = role_run["output"].split("Write the audit settings to offgrid.toml", 1)[1]
    toml = section.split("changed: [pins-from-lock]", 1)[0].rsplit("+++ after", 1)[1]
    etc = role_run["tmp"] / "pins-from-lock" / "etc"
    assert '+engine = "llamacpp"' in toml
    assert f'+lock = "{etc}/offgrid.lock.json"' in toml
    assert '+egress_probe = "10.213.0.1:9"' in toml
    assert not (role_run["tmp"] / "pins-from-lock").exists()  # check mode wrote nothing
    assert "require_sealed" not in toml


def test_engine_namespaces_open_setns_into_net_only_and_require_sealed_is_written(
    role_run: dict[str, Any],
) -> None:
    assert role_run["failed"]["sealed"] == 0, role_run["messages"].get("sealed")
    section = role_run["output"].split("Write the audit settings to offgrid.toml", 1)[1]
    toml = section.split("changed: [sealed]", 1)[0].rsplit("+++ after", 1)[1]
    assert "+require_sealed = true" in toml
    units = role_run["output"].split("Install the audit service", 1)[1]
    sealed = units.split("changed: [sealed]", 1)[0].rsplit("+++ after", 1)[1]
    assert "CAP_KILL CAP_SYS_ADMIN\n" in sealed and "+RestrictNamespaces=net\n" in sealed


def test_by_default_the_audit_follows_the_default_seal(role_run: dict[str, Any]) -> None:
    assert role_run["failed"]["seal-default"] == 0, role_run["messages"].get("seal-default")
    assert "+require_sealed = true" in _diff_for(
        role_run, "Write the audit settings to offgrid.toml", "seal-default"
    )
    unit = _diff_for(role_run, "Install the audit service", "seal-default")
    assert "CAP_KILL CAP_SYS_ADMIN\n" in unit and "+RestrictNamespaces=net\n" in unit


def test_a_lock_without_the_offgrid_wheel_is_refused(role_run: dict[str, Any]) -> None:
    assert "No pin for the offgrid wheel" in _refused(role_run, "no-offgrid-pin")


def test_an_unpinned_wheel_in_the_wheelhouse_is_refused(role_run: dict[str, Any]) -> None:
    assert "evil-1.0-py3-none-any.whl (not pinned)" in _refused(role_run, "unpinned-wheel")


def test_variable_pins_are_checked_against_the_wheels(role_run: dict[str, Any]) -> None:
    message = _refused(role_run, "wrong-variable-pin")
    assert f"{WHEELS[0]} (sha256 differs)" in message and f"{WHEELS[1]} (sha256 differs)" in message


def _diff_for(run: dict[str, Any], task: str, host: str) -> str:
    section = run["output"].split(task, 1)[1]
    return section.split(f"changed: [{host}]", 1)[0].rsplit("+++ after", 1)[1]


def test_the_textfile_is_written_into_a_setgid_directory_of_node_exporters_group(
    role_run: dict[str, Any],
) -> None:
    assert role_run["failed"]["textfile"] == 0, role_run["messages"].get("textfile")
    directory = role_run["tmp"] / "textfile" / "node-exporter"
    runner = _diff_for(role_run, "Install the audit runner", "textfile")
    assert f"--format prometheus --output {directory}/offgrid.prom" in runner
    assert f'+echo "report prometheus {directory}/offgrid.prom"' in runner
    unit = _diff_for(role_run, "Install the audit service", "textfile")
    assert "+ReadWritePaths=" in unit and f" {directory}\n" in unit
    plain = _diff_for(role_run, "Install the audit runner", "pins-from-lock")
    assert "prometheus" not in plain  # off by default (the modes are checked on the host)


def test_a_textfile_group_that_does_not_exist_is_refused(role_run: dict[str, Any]) -> None:
    message = _refused(role_run, "textfile-no-group")
    assert "offgrid-no-such-group does not exist" in message and "node_exporter" in message

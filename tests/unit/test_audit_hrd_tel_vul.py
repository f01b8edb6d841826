"""OG-HRD, OG-TEL and OG-VUL checks on recorded facts."""

from __future__ import annotations

import dataclasses

import pytest

from auditor.checks import hrd, tel, vul
from auditor.inventory.interface import (
    AuditOptions,
    Facts,
    FileModeFact,
    HardeningFacts,
    IdeFacts,
    IdeSettingsFile,
    SecurityScore,
    ServiceUserFact,
)
from auditor.verdicts import Status
from tests.unit.audit_facts import engine, facts


def _hardening(**changes: object) -> HardeningFacts:
    base = HardeningFacts(
        security=SecurityScore(1.1, "OK", None),
        service_user=ServiceUserFact("ollama", 999, 999, "/bin/false", "process"),
        files=(FileModeFact("/usr/bin/ollama", "engine binary", True, 0o755, 0, 0),),
    )
    return dataclasses.replace(base, **changes)


def test_exposure_against_threshold() -> None:
    assert hrd.unit_is_sandboxed(facts(hardening=_hardening())).status is Status.PASS
    unsafe = _hardening(security=SecurityScore(9.2, "UNSAFE", None))
    result = hrd.unit_is_sandboxed(facts(hardening=unsafe))
    assert result.status is Status.FAIL and "9.2" in result.summary
    relaxed = facts(hardening=unsafe, options=AuditOptions(max_exposure=9.5))
    assert hrd.unit_is_sandboxed(relaxed).status is Status.PASS


def test_exposure_unavailable_is_error_not_pass() -> None:
    missing = _hardening(security=SecurityScore(None, None, "systemd is not running"))
    assert hrd.unit_is_sandboxed(facts(hardening=missing)).status is Status.ERROR


@pytest.mark.parametrize(
    ("user", "status"),
    [
        (ServiceUserFact("ollama", 999, 999, "/bin/false", "process"), Status.PASS),
        (ServiceUserFact("ollama", 999, 999, "/usr/sbin/nologin", "process"), Status.PASS),
        (ServiceUserFact("root", 0, 0, "/bin/bash", "process"), Status.FAIL),
        (ServiceUserFact("dev", 1000, 1000, "/bin/bash", "process"), Status.FAIL),
        (None, Status.ERROR),
    ],
)
def test_service_user(user: ServiceUserFact | None, status: Status) -> None:
    assert (
        hrd.dedicated_unprivileged_user(facts(hardening=_hardening(service_user=user))).status
        is status
    )


@pytest.mark.parametrize(
    ("fact", "status"),
    [
        (FileModeFact("/usr/bin/ollama", "engine binary", True, 0o755, 0, 0), Status.PASS),
        (FileModeFact("/usr/bin/ollama", "engine binary", True, 0o757, 0, 0), Status.FAIL),
        (FileModeFact("/usr/bin/ollama", "engine binary", True, 0o775, 0, 50), Status.FAIL),
        (FileModeFact("/usr/bin/ollama", "engine binary", True, 0o755, 999, 999), Status.FAIL),
        (
            FileModeFact("/srv/models", "model store", True, 0o770, 999, 999, is_dir=True),
            Status.PASS,
        ),
        (
            FileModeFact("/srv/models", "model store", True, 0o777, 999, 999, is_dir=True),
            Status.FAIL,
        ),
        (FileModeFact("/etc/x.service", "unit file", False, None, None, None), Status.ERROR),
    ],
)
def test_file_modes(fact: FileModeFact, status: Status) -> None:
    assert (
        hrd.files_not_writable_by_others(facts(hardening=_hardening(files=(fact,)))).status
        is status
    )


def _ide(*files: IdeSettingsFile, unknown: tuple[str, ...] = ()) -> IdeFacts:
    return IdeFacts(files, unknown)


def _vscode(
    settings: dict[str, object] | None, exists: bool = True, error: str | None = None
) -> IdeSettingsFile:
    return IdeSettingsFile(
        "dev",
        "vscode",
        "Code",
        "/home/dev/.config/Code/User/settings.json",
        exists,
        settings,
        error,
    )


def _with_users(**changes: object) -> Facts:
    return facts(options=AuditOptions(ide_users=("dev",)), **changes)


def test_telemetry_not_applicable_without_users() -> None:
    assert tel.vscode_telemetry(facts()).status is Status.NOT_APPLICABLE
    assert tel.vscode_telemetry(_with_users(ide=_ide())).status is Status.NOT_APPLICABLE


@pytest.mark.parametrize(
    ("settings", "status"),
    [
        ({"telemetry.telemetryLevel": "off"}, Status.PASS),
        ({"telemetry.telemetryLevel": "crash"}, Status.FAIL),
        ({"telemetry.enableTelemetry": False}, Status.PASS),
        ({"telemetry.enableTelemetry": True}, Status.FAIL),
        ({"telemetry.telemetryLevel": "all", "telemetry.enableTelemetry": False}, Status.FAIL),
        ({}, Status.FAIL),
    ],
)
def test_vscode_settings(settings: dict[str, object], status: Status) -> None:
    assert tel.vscode_telemetry(_with_users(ide=_ide(_vscode(settings)))).status is status


def test_vscode_missing_or_broken_settings() -> None:
    assert (
        tel.vscode_telemetry(_with_users(ide=_ide(_vscode(None, exists=False)))).status
        is Status.FAIL
    )
    broken = _ide(_vscode(None, error="malformed: x"))
    assert tel.vscode_telemetry(_with_users(ide=broken)).status is Status.ERROR
    assert tel.vscode_telemetry(_with_users(ide=_ide(unknown=("dev",)))).status is Status.ERROR


def _cont(name: str, settings: dict[str, object] | None, exists: bool = True) -> IdeSettingsFile:
    return IdeSettingsFile(
        "dev", "continue", "Continue", f"/home/dev/.continue/{name}", exists, settings, None
    )


def _continue_status(*files: IdeSettingsFile) -> Status:
    return tel.continue_telemetry(_with_users(ide=_ide(*files))).status


def test_continue_yaml_key_is_ignored_and_the_editor_switch_counts() -> None:
    yaml_off = _cont("config.yaml", {"allowAnonymousTelemetry": False})
    no_json = _cont("config.json", None, False)
    # current Continue ignores the key in config.yaml: only the editor switch turns it off
    assert _continue_status(yaml_off, no_json) is Status.FAIL
    result = tel.continue_telemetry(_with_users(ide=_ide(yaml_off, no_json)))
    assert "ignored" in result.evidence[0].value
    switch_off = _vscode({"continue.telemetryEnabled": False})
    assert _continue_status(yaml_off, no_json, switch_off) is Status.PASS
    switch_on = _vscode({"continue.telemetryEnabled": True})
    assert _continue_status(yaml_off, no_json, switch_on) is Status.FAIL


def test_continue_legacy_json_switch_still_counts() -> None:
    no_yaml = _cont("config.yaml", None, False)
    assert _continue_status(no_yaml, _cont("config.json", {"allowAnonymousTelemetry": False})) is (
        Status.PASS
    )
    json_on = _cont("config.json", {"allowAnonymousTelemetry": True})
    assert _continue_status(no_yaml, json_on) is Status.FAIL
    assert _continue_status(no_yaml, json_on, _vscode({"continue.telemetryEnabled": False})) is (
        Status.PASS
    )
    nothing = (no_yaml, _cont("config.json", None, False))
    assert _continue_status(*nothing) is Status.FAIL
    assert _continue_status(*nothing, _vscode({"continue.telemetryEnabled": False})) is Status.PASS


def _shared(settings: dict[str, object] | None, error: str | None = None) -> IdeSettingsFile:
    path = "/home/dev/.continue/index/globalContext.json"
    return IdeSettingsFile("dev", "continue-shared", "Continue", path, True, settings, error)


def test_continue_shared_config_overrides_config_yaml() -> None:
    yaml = _cont("config.yaml", {"name": "x"})
    off = _shared({"sharedConfig": {"allowAnonymousTelemetry": False}})
    assert _continue_status(yaml, off) is Status.PASS
    on = _shared({"sharedConfig": {"allowAnonymousTelemetry": True}})
    assert _continue_status(yaml, on) is Status.FAIL
    assert _continue_status(yaml, _shared({"sharedConfig": {}})) is Status.FAIL
    # a legacy config.json false is migrated into the shared config: off either way
    no_yaml = _cont("config.yaml", None, False)
    json_off = _cont("config.json", {"allowAnonymousTelemetry": False})
    assert _continue_status(no_yaml, json_off, on) is Status.PASS


def test_continue_under_vscode_with_telemetry_off_everywhere_counts() -> None:
    yaml = _cont("config.yaml", {"name": "x"})
    assert _continue_status(yaml, _vscode({"telemetry.telemetryLevel": "off"})) is Status.PASS
    assert _continue_status(yaml, _vscode({"telemetry.telemetryLevel": "error"})) is Status.FAIL
    # Continue may run in any editor the user has: each must say off
    codium = IdeSettingsFile(
        "dev", "vscode", "VSCodium", "/home/dev/.config/VSCodium/User/settings.json", True,
        {}, None,
    )  # fmt: skip
    switch_off = _vscode({"continue.telemetryEnabled": False})
    assert _continue_status(yaml, switch_off, codium) is Status.FAIL


def test_continue_unreadable_evidence_is_an_error_not_a_fail() -> None:
    yaml = _cont("config.yaml", {"name": "x"})
    assert _continue_status(yaml, _shared(None, error="malformed: x")) is Status.ERROR
    broken_editor = _vscode(None, error="unreadable: too large")
    assert _continue_status(yaml, broken_editor) is Status.ERROR
    # a readable proof of "off" still passes beside an unreadable file
    off = _shared({"sharedConfig": {"allowAnonymousTelemetry": False}})
    assert _continue_status(yaml, broken_editor, off) is Status.PASS


def test_vulnerable_ollama_fails_with_sources() -> None:
    result = vul.engine_version_not_vulnerable(facts(engine=engine(version="0.1.30")))
    assert result.status is Status.FAIL
    assert "CVE-2024-37032" in result.summary and "CVE-2024-28224" not in result.summary
    assert any("nvd.nist.gov" in e.value for e in result.evidence)


def test_current_versions_pass_and_unknown_is_error() -> None:
    assert (
        vul.engine_version_not_vulnerable(facts(engine=engine(version="0.20.0"))).status
        is Status.PASS
    )
    llama = engine(kind="llamacpp", version="0.2.70")
    assert vul.engine_version_not_vulnerable(facts(engine=llama)).status is Status.FAIL
    assert (
        vul.engine_version_not_vulnerable(facts(engine=engine(version=None))).status is Status.ERROR
    )

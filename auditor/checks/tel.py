"""OG-TEL: IDE-extension telemetry settings of the users the audit was told about."""

from __future__ import annotations

from collections.abc import Callable

from auditor.checks._common import result
from auditor.checks.interface import Result, Status, check
from auditor.inventory.interface import Facts, IdeSettingsFile


def vscode_telemetry_off(settings: IdeSettingsFile) -> tuple[bool, str]:
    values = settings.settings or {}
    level = values.get("telemetry.telemetryLevel")
    if level is not None:
        return level == "off", f"telemetry.telemetryLevel = {level!r}"
    legacy = values.get("telemetry.enableTelemetry")
    if legacy is not None:
        return legacy is False, f"telemetry.enableTelemetry = {legacy!r} (legacy setting)"
    return False, 'telemetry.telemetryLevel unset (defaults to "all")'


def continue_telemetry_off(settings: IdeSettingsFile) -> tuple[bool, str]:
    value = (settings.settings or {}).get("allowAnonymousTelemetry")
    if value is None:
        return False, "allowAnonymousTelemetry unset (defaults to true)"
    return value is False, f"allowAnonymousTelemetry = {value!r}"


Judge = Callable[[IdeSettingsFile], tuple[bool, str]]


def _files_for(facts: Facts, kind: str) -> list[IdeSettingsFile]:
    files = [f for f in facts.ide.files if f.kind == kind] if facts.ide else []
    if kind == "continue":
        # Continue reads config.yaml when it exists, else config.json
        chosen: dict[str, IdeSettingsFile] = {}
        for f in files:
            if f.user not in chosen or (not chosen[f.user].exists and f.exists):
                chosen[f.user] = f
        return list(chosen.values())
    return files


def _precondition(facts: Facts, cid: str) -> Result | None:
    if not facts.options.ide_users:
        return result(cid, Status.NOT_APPLICABLE, "no IDE users configured (--ide-user)")
    if facts.ide is None:
        return result(cid, Status.ERROR, "IDE settings were not collected")
    if facts.ide.unknown_users:
        return result(cid, Status.ERROR, f"unknown user(s): {', '.join(facts.ide.unknown_users)}")
    return None


def _telemetry(facts: Facts, cid: str, kind: str, judge: Judge, what: str) -> Result:
    if (early := _precondition(facts, cid)) is not None:
        return early
    files = _files_for(facts, kind)
    if not files:
        users = ", ".join(facts.options.ide_users)
        return result(cid, Status.NOT_APPLICABLE, f"{what} is not set up for {users}")
    evidence: list[tuple[str, str]] = []
    failing, broken = [], []
    for settings in files:
        label = f"{settings.user} {settings.product}"
        if settings.error:
            broken.append(label)
            evidence.append((label, f"{settings.path}: {settings.error}"))
            continue
        ok, why = judge(settings) if settings.exists else (False, "no settings file (defaults)")
        evidence.append((label, f"{settings.path}: {why}"))
        if not ok:
            failing.append(label)
    if failing:
        return result(
            cid, Status.FAIL, f"{what} telemetry is on for {', '.join(failing)}", evidence
        )
    if broken:
        return result(cid, Status.ERROR, f"unreadable settings: {', '.join(broken)}", evidence)
    return result(cid, Status.PASS, f"{what} telemetry is off for every configured user", evidence)


@check("OG-TEL-01")
def vscode_telemetry(facts: Facts) -> Result:
    return _telemetry(facts, "OG-TEL-01", "vscode", vscode_telemetry_off, "VS Code")


@check("OG-TEL-02")
def continue_telemetry(facts: Facts) -> Result:
    return _telemetry(facts, "OG-TEL-02", "continue", continue_telemetry_off, "Continue")

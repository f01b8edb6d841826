"""OG-TEL: IDE-extension telemetry settings of the users the audit was told about."""

from __future__ import annotations

from collections.abc import Callable

from auditor.checks.interface import check
from auditor.inventory.interface import Facts, IdeSettingsFile
from auditor.verdicts import CannotEvaluate, DoesNotApply, Finding, Status, finding


def vscode_telemetry_off(settings: IdeSettingsFile) -> tuple[bool, str]:
    if not settings.exists:
        return False, "no settings file (telemetry defaults to all)"
    values = settings.settings or {}
    level = values.get("telemetry.telemetryLevel")
    if level is not None:
        return level == "off", f"telemetry.telemetryLevel = {level!r}"
    legacy = values.get("telemetry.enableTelemetry")
    if legacy is not None:
        return legacy is False, f"telemetry.enableTelemetry = {legacy!r} (legacy setting)"
    return False, 'telemetry.telemetryLevel unset (defaults to "all")'


def continue_telemetry_off(settings: IdeSettingsFile) -> tuple[bool, str]:
    """Continue's own file: only the legacy config.json switch is honoured.

    Continue migrates `allowAnonymousTelemetry` out of config.json into its shared
    config and obeys it; config.yaml has no such key (a value written there is ignored),
    so for config.yaml the editor switch `continue.telemetryEnabled` is what counts.
    """
    if not settings.exists:
        return False, "no Continue configuration (telemetry defaults to on)"
    value = (settings.settings or {}).get("allowAnonymousTelemetry")
    if settings.path.endswith(".json"):
        if value is None:
            return False, "allowAnonymousTelemetry unset (defaults to true)"
        return value is False, f"allowAnonymousTelemetry = {value!r}"
    if value is not None:
        return False, f"allowAnonymousTelemetry = {value!r} is ignored in config.yaml"
    return False, "config.yaml carries no telemetry switch"


def editor_switch_off(files: list[IdeSettingsFile], user: str) -> tuple[bool, str] | None:
    """`continue.telemetryEnabled` in the user's VS Code-family settings, when set."""
    for settings in files:
        if settings.user != user or not settings.exists:
            continue
        value = (settings.settings or {}).get("continue.telemetryEnabled")
        if value is not None:
            return value is False, f"{settings.path}: continue.telemetryEnabled = {value!r}"
    return None


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


def _precondition(facts: Facts) -> None:
    if not facts.options.ide_users:
        raise DoesNotApply("no IDE users configured (--ide-user)")
    if facts.ide is None:
        raise CannotEvaluate("IDE settings were not collected")
    if facts.ide.unknown_users:
        raise CannotEvaluate(f"unknown user(s): {', '.join(facts.ide.unknown_users)}")


def _telemetry(facts: Facts, kind: str, judge: Judge, what: str) -> Finding:
    _precondition(facts)
    files = _files_for(facts, kind)
    if not files:
        users = ", ".join(facts.options.ide_users)
        return finding(Status.NOT_APPLICABLE, f"{what} is not set up for {users}")
    evidence: list[tuple[str, str]] = []
    failing, broken = [], []
    for settings in files:
        label = f"{settings.user} {settings.product}"
        if settings.error:
            broken.append(label)
            evidence.append((label, f"{settings.path}: {settings.error}"))
            continue
        ok, why = judge(settings)
        evidence.append((label, f"{settings.path}: {why}"))
        if not ok:
            failing.append(label)
    if failing:
        return finding(Status.FAIL, f"{what} telemetry is on for {', '.join(failing)}", evidence)
    if broken:
        return finding(Status.ERROR, f"unreadable settings: {', '.join(broken)}", evidence)
    return finding(Status.PASS, f"{what} telemetry is off for every configured user", evidence)


@check("OG-TEL-01")
def vscode_telemetry(facts: Facts) -> Finding:
    return _telemetry(facts, "vscode", vscode_telemetry_off, "VS Code")


@check("OG-TEL-02")
def continue_telemetry(facts: Facts) -> Finding:
    editors = _files_for(facts, "vscode") if facts.ide else []

    def judge(settings: IdeSettingsFile) -> tuple[bool, str]:
        switch = editor_switch_off(editors, settings.user)
        if switch is not None and switch[0]:
            return switch
        own = continue_telemetry_off(settings)
        if own[0]:
            return own
        editor = switch[1] if switch else "continue.telemetryEnabled unset (defaults to true)"
        return False, f"{own[1]}; {editor}"

    return _telemetry(facts, "continue", judge, "Continue")

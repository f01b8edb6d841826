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


def _editor_off(settings: IdeSettingsFile) -> tuple[bool, str]:
    """Continue in a VS Code-family editor sends nothing when the editor's telemetry is
    off or its own `continue.telemetryEnabled` is false (either switch suffices)."""
    values = settings.settings or {}
    switch = values.get("continue.telemetryEnabled")
    if switch is False:
        return True, f"{settings.path}: continue.telemetryEnabled = false"
    level = values.get("telemetry.telemetryLevel")
    if level == "off":
        return True, f'{settings.path}: telemetry.telemetryLevel = "off"'
    shown = "unset (defaults to true)" if switch is None else repr(switch)
    return False, f"{settings.path}: continue.telemetryEnabled {shown}"


def editor_switch_off(files: list[IdeSettingsFile], user: str) -> tuple[bool, str] | None:
    """The editor side for one user: off only when every editor of theirs that has
    settings says so (Continue may run in any of them); None when they have none."""
    judged = [
        (False, f"{f.path}: {f.error}") if f.error else _editor_off(f)
        for f in files
        if f.user == user and f.exists
    ]
    if not judged:
        return None
    failing = [why for ok, why in judged if not ok]
    if failing:
        return False, "; ".join(failing)
    return True, "; ".join(why for _, why in judged)


def shared_config_off(files: list[IdeSettingsFile], user: str) -> tuple[bool, str] | None:
    """Continue's shared configuration (globalContext.json, "sharedConfig"), when present:
    its allowAnonymousTelemetry overrides config.yaml and config.json."""
    for shared in files:
        if shared.user != user or not shared.exists:
            continue
        if shared.error:
            return False, f"{shared.path}: {shared.error}"
        config = (shared.settings or {}).get("sharedConfig")
        value = config.get("allowAnonymousTelemetry") if isinstance(config, dict) else None
        if value is None:
            return False, f"{shared.path}: sharedConfig.allowAnonymousTelemetry unset"
        return value is False, f"{shared.path}: sharedConfig.allowAnonymousTelemetry = {value!r}"
    return None


Judge = Callable[[IdeSettingsFile], tuple[bool | None, str]]


def _unreadable(files: list[IdeSettingsFile], user: str) -> bool:
    return any(f.user == user and f.error for f in files)


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
        if ok is None:
            broken.append(label)
        elif not ok:
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
    shared = _files_for(facts, "continue-shared") if facts.ide else []

    def judge(settings: IdeSettingsFile) -> tuple[bool | None, str]:
        # Continue turns telemetry off when any of these says off: its shared config, a
        # legacy config.json (migrated into the shared config) or the editor's switches.
        proofs = (
            shared_config_off(shared, settings.user),
            continue_telemetry_off(settings),
            editor_switch_off(editors, settings.user)
            or (False, "no VS Code settings (continue.telemetryEnabled defaults to true)"),
        )
        for proof in proofs:
            if proof is not None and proof[0]:
                return proof
        why = "; ".join(proof[1] for proof in proofs if proof is not None)
        # an unreadable file may hold the switch that turns it off: unproved, not a fail
        unreadable = _unreadable(shared, settings.user) or _unreadable(editors, settings.user)
        return (None if unreadable else False), why

    return _telemetry(facts, "continue", judge, "Continue")

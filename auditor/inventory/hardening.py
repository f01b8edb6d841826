"""Facts for the hardening controls: the unit's sandboxing score, the service user, file modes."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
import subprocess
from pathlib import Path

from auditor.inventory.interface import (
    AuditOptions,
    EngineFacts,
    FileModeFact,
    HardeningFacts,
    SecurityScore,
    ServiceUserFact,
)
from auditor.inventory.profiles import model_paths

_EXPOSURE = re.compile(r"Overall exposure level for \S+:\s*([0-9]+(?:\.[0-9]+)?)\s+(\S+)")


def parse_security_output(text: str) -> tuple[float, str] | None:
    """The overall exposure (0 safest … 10) and its rating from `systemd-analyze security`."""
    match = _EXPOSURE.search(text)
    return (float(match.group(1)), match.group(2)) if match else None


def security_score(unit: str | None, systemd_running: bool) -> SecurityScore:
    if not systemd_running:
        return SecurityScore(None, None, "systemd is not running: systemd-analyze cannot score")
    if unit is None:
        return SecurityScore(None, None, "the engine has no systemd unit to score")
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return SecurityScore(None, None, "systemd-analyze is not installed")
    try:
        done = subprocess.run(
            [analyze, "security", "--no-pager", unit], capture_output=True, text=True,
            timeout=30, check=False, env={**os.environ, "LC_ALL": "C", "SYSTEMD_COLORS": "0"},
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return SecurityScore(None, None, f"systemd-analyze failed: {exc}")
    tail = "\n".join(done.stdout.strip().splitlines()[-3:])
    parsed = parse_security_output(done.stdout)
    if done.returncode != 0 or parsed is None:
        why = done.stderr.strip() or f"exit {done.returncode}, no exposure line"
        return SecurityScore(None, None, f"systemd-analyze security {unit}: {why}", tail)
    return SecurityScore(parsed[0], parsed[1], None, tail)


def _user_entry(name: str | None, uid: int | None) -> pwd.struct_passwd | None:
    try:
        if name:
            return pwd.getpwnam(name)
        if uid is not None:
            return pwd.getpwuid(uid)
    except KeyError:
        return None
    return None


def service_user(engine: EngineFacts) -> ServiceUserFact | None:
    """Who the engine runs as: the live process if there is one, else the unit's User=."""
    if engine.main is not None:
        name, uid, source = engine.main.username, engine.main.uid, "process"
    elif engine.unit is not None:
        # systemd runs a unit without User= as root
        name, uid, source = engine.unit.properties.get("User") or "root", None, "unit User="
    else:
        return None
    entry = _user_entry(name, uid)
    if entry is None:
        return ServiceUserFact(name, uid, None, None, source)
    return ServiceUserFact(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_shell, source)


def file_mode(path: Path, role: str) -> FileModeFact:
    try:
        info = path.stat()
    except OSError:
        return FileModeFact(str(path), role, False, None, None, None)
    return FileModeFact(
        str(path), role, True, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid,
        is_dir=stat.S_ISDIR(info.st_mode),
    )  # fmt: skip


def engine_files(engine: EngineFacts, options: AuditOptions) -> tuple[FileModeFact, ...]:
    paths: list[tuple[Path, str]] = []
    if engine.exe_path:
        exe = Path(engine.exe_path)
        paths += [(exe, "engine binary"), (exe.parent, "engine binary directory")]
    if engine.unit is not None:
        if engine.unit.fragment_path:
            paths.append((Path(engine.unit.fragment_path), "unit file"))
        paths += [(Path(p), "unit drop-in") for p in engine.unit.dropin_paths]
    stores = [options.store_dir] if options.store_dir else model_paths(engine)
    paths += [(p, "model store") for p in stores]
    return tuple(file_mode(path, role) for path, role in paths)


def collect(engine: EngineFacts, options: AuditOptions, systemd_running: bool) -> HardeningFacts:
    unit_name = engine.unit.name if engine.unit else None
    return HardeningFacts(
        security=security_score(unit_name, systemd_running),
        service_user=service_user(engine),
        files=engine_files(engine, options),
    )

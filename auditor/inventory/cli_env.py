"""Where the engine CLI's agent-tool switches are set for the configured CLI users.

A login shell reads /etc/environment (pam_env), /etc/profile.d/*.sh, then the user's own
files; the last assignment of a variable wins and `unset` clears it. Shell files are read as
plain `[export] NAME=VALUE` lines (no evaluation). Running CLI processes of the user are the
live proof: their /proc/PID/environ.
"""

from __future__ import annotations

import pwd
import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from auditor import safeio
from auditor.errors import InputError
from auditor.inventory.environ import read_environ
from auditor.inventory.interface import CliUserEnv, ProcessFact

MAX_FILE = 1 << 20
SYSTEM_ENVIRONMENT = Path("/etc/environment")
PROFILE_D = Path("/etc/profile.d")
# read in this order by pam_env, then bash/zsh login shells
USER_FILES = (".pam_environment", ".profile", ".bash_profile", ".bashrc", ".zshenv", ".zprofile")
ENVIRONMENT_D = ".config/environment.d"  # systemd user sessions
ALL_USERS = "*"


def system_files() -> list[Path]:
    scripts = sorted(PROFILE_D.glob("*.sh")) if PROFILE_D.is_dir() else []
    return [SYSTEM_ENVIRONMENT, *scripts]


def user_files(home: Path) -> list[Path]:
    env_d = home / ENVIRONMENT_D
    confs = sorted(env_d.glob("*.conf")) if env_d.is_dir() else []
    return [*(home / name for name in USER_FILES), *confs]


def _value(text: str) -> str:
    try:
        parts = shlex.split(text, comments=True)
    except ValueError:
        return text.strip()
    return parts[0] if parts else ""


def assignments(text: str, names: Iterable[str]) -> list[tuple[str, str | None]]:
    """(name, value) per assignment of one of `names`, in order; value None for `unset`."""
    wanted = set(names)
    found: list[tuple[str, str | None]] = []
    for line in text.splitlines():
        stripped = line.strip()
        unset = re.match(r"^unset\s+(.+)$", stripped)
        if unset:
            found += [(n, None) for n in unset.group(1).split() if n in wanted]
            continue
        pam = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s+(?:DEFAULT|OVERRIDE)=(.*)$", stripped)
        plain = re.match(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", stripped)
        match = pam or plain
        if match and match.group(1) in wanted:
            found.append((match.group(1), _value(match.group(2))))
    return found


Source = tuple[Path, Path | None]  # (file, the home it lies in: None for a system file)


def _read(path: Path, home: Path | None, uid: int | None) -> str | None:
    """A login file's text: system files as regular files, a user's files opened without
    following symlinks and owned by the user; None when absent."""
    try:
        if home is None:
            if not safeio.present(path):
                return None
            return safeio.read_text(path, MAX_FILE)
        return safeio.read_user_text(home, path.relative_to(home).as_posix(), uid, MAX_FILE)
    except FileNotFoundError:
        return None


def read_settings(
    files: Sequence[Source], names: Sequence[str], uid: int | None = None
) -> tuple[dict[str, tuple[str, str]], list[str], list[str]]:
    """The last assignment of each name across files, the files read, and read errors."""
    settings: dict[str, tuple[str, str]] = {}
    read, errors = [], []
    for path, home in files:
        try:
            text = _read(path, home, uid)
        except InputError as exc:
            errors.append(str(exc))
            continue
        if text is None:
            continue
        read.append(str(path))
        for name, value in assignments(text, names):
            if value is None:
                settings.pop(name, None)
            else:
                settings[name] = (value, str(path))
    return settings, read, errors


def user_env(
    user: str,
    home: Path | None,
    names: Sequence[str],
    system: Sequence[Path],
    live: dict[int, dict[str, str | None]],
    *,
    uid: int | None = None,
) -> CliUserEnv:
    if home is None:
        return CliUserEnv(user, None, {}, (), live, (f"no such user {user!r}",))
    sources = [*((p, None) for p in system), *((p, home) for p in user_files(home))]
    settings, read, errors = read_settings(sources, names, uid)
    return CliUserEnv(user, str(home), settings, tuple(read), live, tuple(errors))


def _live(
    user: str, processes: Sequence[ProcessFact], is_cli: Callable[[ProcessFact], bool],
    names: Sequence[str],
) -> dict[int, dict[str, str | None]]:  # fmt: skip
    out: dict[int, dict[str, str | None]] = {}
    for fact in processes:
        if fact.username == user and is_cli(fact):
            environ = read_environ(fact.pid)
            if environ is not None:
                out[fact.pid] = {name: environ.get(name) for name in names}
    return out


def collect(
    users: Sequence[str],
    names: Sequence[str],
    processes: Sequence[ProcessFact],
    is_cli: Callable[[ProcessFact], bool] | None,
) -> tuple[CliUserEnv, ...]:
    """One entry per configured user, after `*`: the system-wide files alone (they apply to
    every login user)."""
    if not names:
        return ()
    system = system_files()
    settings, read, errors = read_settings([(p, None) for p in system], names)
    out = [CliUserEnv(ALL_USERS, None, settings, tuple(read), {}, tuple(errors))]
    for user in users:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            out.append(user_env(user, None, names, system, {}))
            continue
        live = _live(user, processes, is_cli, names) if is_cli else {}
        out.append(user_env(user, Path(entry.pw_dir), names, system, live, uid=entry.pw_uid))
    return tuple(out)

"""IDE settings of the users the audit was told to inspect (VS Code family, Continue).

These files belong to the users, and the audit runs as root: each is opened without
following any symlink below the home directory, must be a regular file the user owns, and
is read through the bounded reader. A file that fails any of that is recorded with the
reason (the user's controls become `error`), never followed and never fatal to the audit.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
from collections.abc import Sequence
from pathlib import Path

from auditor import safeio
from auditor.errors import InputError
from auditor.inventory.interface import IdeFacts, IdeSettingsFile

# A settings file is a few KiB; a larger one is refused rather than read (it could be
# a sparse file or a hostile one: the audit runs as root and reads files users control).
MAX_SETTINGS_BYTES = 1024 * 1024

# (product, settings.json relative to the home directory, the directory that says it is used)
VSCODE_SETTINGS: tuple[tuple[str, str, str], ...] = (
    ("Code", ".config/Code/User/settings.json", ".config/Code"),
    ("Code - Insiders", ".config/Code - Insiders/User/settings.json", ".config/Code - Insiders"),
    ("Code - OSS", ".config/Code - OSS/User/settings.json", ".config/Code - OSS"),
    ("VSCodium", ".config/VSCodium/User/settings.json", ".config/VSCodium"),
    ("VS Code Server", ".vscode-server/data/Machine/settings.json", ".vscode-server"),
)
CONTINUE_FILES: tuple[str, ...] = (".continue/config.yaml", ".continue/config.json")

# Strings are matched first so that "//" or "," inside a string is left alone.
_COMMENTS = re.compile(r'"(?:\\.|[^"\\])*"|//[^\n]*|/\*.*?\*/', re.DOTALL)
_TRAILING_COMMAS = re.compile(r'"(?:\\.|[^"\\])*"|,(?=\s*[}\]])')


def _keep_strings(match: re.Match[str]) -> str:
    return match.group(0) if match.group(0).startswith('"') else ""


def strip_jsonc(text: str) -> str:
    """JSON with comments (VS Code's settings format) → JSON: comments and trailing commas go."""
    return _TRAILING_COMMAS.sub(_keep_strings, _COMMENTS.sub(_keep_strings, text))


def parse_jsonc(text: str, source: str = "settings") -> dict[str, object]:
    data = safeio.parse_json(strip_jsonc(text), source) if text.strip() else {}
    if not isinstance(data, dict):
        raise ValueError("top level is not an object")
    return data


_YAML_TOP_LEVEL = re.compile(r"^([A-Za-z_][\w.-]*)\s*:\s*(.*?)\s*(?:#.*)?$")


def parse_continue_yaml(text: str) -> dict[str, object]:
    """Top-level scalar keys of Continue's config.yaml (nested blocks are not needed here)."""
    values: dict[str, object] = {}
    for line in text.splitlines():
        if not line or line[0].isspace() or line.lstrip().startswith("#"):
            continue
        match = _YAML_TOP_LEVEL.match(line)
        if match:
            raw = match.group(2).strip("'\"")
            lowered = raw.lower()
            values[match.group(1)] = {"true": True, "false": False}.get(lowered, raw)
    return values


def _read(
    user: str, uid: int | None, home: Path, rel: str, *, kind: str, product: str
) -> IdeSettingsFile:
    """One settings file, opened as `open_user_file` does: no symlink, the user's own file."""
    path = str(home / rel)
    try:
        text = safeio.read_user_text(home, rel, uid, MAX_SETTINGS_BYTES)
    except FileNotFoundError:
        return IdeSettingsFile(user, kind, product, path, False, None, None)
    except InputError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        return IdeSettingsFile(user, kind, product, path, True, None, f"unreadable: {reason}")
    try:
        settings = parse_continue_yaml(text) if rel.endswith(".yaml") else parse_jsonc(text, path)
    except (InputError, ValueError) as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        return IdeSettingsFile(user, kind, product, path, True, None, f"malformed: {reason}")
    return IdeSettingsFile(user, kind, product, path, True, settings, None)


def _is_dir(home: Path, rel: str) -> bool:
    """Whether home/rel is a real directory (a symlink to one does not count)."""
    try:
        return stat.S_ISDIR(os.lstat(home / rel).st_mode)
    except OSError:
        return False


def user_files(user: str, home: Path, uid: int | None = None) -> list[IdeSettingsFile]:
    files = [
        _read(user, uid, home, rel, kind="vscode", product=product)
        for product, rel, marker in VSCODE_SETTINGS
        if _is_dir(home, marker)
    ]
    if _is_dir(home, ".continue"):
        files += [
            _read(user, uid, home, rel, kind="continue", product="Continue")
            for rel in CONTINUE_FILES
        ]
    return files


def collect(users: Sequence[str]) -> IdeFacts:
    files: list[IdeSettingsFile] = []
    unknown: list[str] = []
    for user in users:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            unknown.append(user)
            continue
        files += user_files(user, Path(entry.pw_dir), entry.pw_uid)
    return IdeFacts(tuple(files), tuple(unknown))

"""IDE settings of the users the audit was told to inspect (VS Code family, Continue)."""

from __future__ import annotations

import json
import pwd
import re
from collections.abc import Sequence
from pathlib import Path

from auditor.inventory.interface import IdeFacts, IdeSettingsFile

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


def parse_jsonc(text: str) -> dict[str, object]:
    data = json.loads(strip_jsonc(text)) if text.strip() else {}
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


def _read(user: str, kind: str, product: str, path: Path, yaml: bool = False) -> IdeSettingsFile:
    if not path.exists():
        return IdeSettingsFile(user, kind, product, str(path), False, None, None)
    try:
        text = path.read_text("utf-8")
        settings = parse_continue_yaml(text) if yaml else parse_jsonc(text)
    except OSError as exc:
        return IdeSettingsFile(user, kind, product, str(path), True, None, f"unreadable: {exc}")
    except ValueError as exc:
        return IdeSettingsFile(user, kind, product, str(path), True, None, f"malformed: {exc}")
    return IdeSettingsFile(user, kind, product, str(path), True, settings, None)


def user_files(user: str, home: Path) -> list[IdeSettingsFile]:
    files = [
        _read(user, "vscode", product, home / rel)
        for product, rel, marker in VSCODE_SETTINGS
        if (home / marker).is_dir()
    ]
    if (home / ".continue").is_dir():
        files += [
            _read(user, "continue", "Continue", home / rel, yaml=rel.endswith(".yaml"))
            for rel in CONTINUE_FILES
        ]
    return files


def collect(users: Sequence[str]) -> IdeFacts:
    files: list[IdeSettingsFile] = []
    unknown: list[str] = []
    for user in users:
        try:
            home = Path(pwd.getpwnam(user).pw_dir)
        except KeyError:
            unknown.append(user)
            continue
        files += user_files(user, home)
    return IdeFacts(tuple(files), tuple(unknown))

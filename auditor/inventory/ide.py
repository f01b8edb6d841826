"""IDE settings of the users the audit was told to inspect (VS Code family, Continue).

These files belong to the users, and the audit runs as root: they are read by a forked child
that has dropped to the user's uid and gid, each is opened without following any symlink
below the home directory, must be a regular file the user owns, and is read through the
bounded reader. A file that fails any of that is recorded with the
reason (the user's controls become `error`), never followed and never fatal to the audit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pwd
import re
import select
import signal
import stat
import time
from collections.abc import Sequence
from pathlib import Path

from auditor import safeio
from auditor.errors import InputError
from auditor.inventory.interface import IdeFacts, IdeSettingsFile

# A settings file is a few KiB; a larger one is refused rather than read (it could be
# a sparse file or a hostile one: the audit runs as root and reads files users control).
MAX_SETTINGS_BYTES = 1024 * 1024
CHILD_TIMEOUT_S = 20.0
CHILD_REPLY_LIMIT = 16 * 1024 * 1024

# (product, settings.json relative to the home directory, the directory that says it is used)
VSCODE_SETTINGS: tuple[tuple[str, str, str], ...] = (
    ("Code", ".config/Code/User/settings.json", ".config/Code"),
    ("Code - Insiders", ".config/Code - Insiders/User/settings.json", ".config/Code - Insiders"),
    ("Code - OSS", ".config/Code - OSS/User/settings.json", ".config/Code - OSS"),
    ("VSCodium", ".config/VSCodium/User/settings.json", ".config/VSCodium"),
    ("VS Code Server", ".vscode-server/data/Machine/settings.json", ".vscode-server"),
)
CONTINUE_FILES: tuple[str, ...] = (".continue/config.yaml", ".continue/config.json")
# Continue's shared configuration: the "sharedConfig" object of this file holds the
# allowAnonymousTelemetry that Continue applies over config.yaml and config.json alike.
CONTINUE_SHARED = ".continue/index/globalContext.json"

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
        files.append(
            _read(user, uid, home, CONTINUE_SHARED, kind="continue-shared", product="Continue")
        )
    return files


def _failed(user: str, home: str, why: str) -> list[IdeSettingsFile]:
    return [
        IdeSettingsFile(user, kind, "(all)", home, True, None, f"unreadable: {why}")
        for kind in ("vscode", "continue")
    ]


def _child(entry: pwd.struct_passwd, write_fd: int) -> None:  # pragma: no cover - forked
    """In a forked child: become the user, read their files, send them back, exit."""
    code = 1
    try:
        os.setgroups([])
        os.setresgid(entry.pw_gid, entry.pw_gid, entry.pw_gid)
        os.setresuid(entry.pw_uid, entry.pw_uid, entry.pw_uid)
        files = user_files(entry.pw_name, Path(entry.pw_dir), entry.pw_uid)
        view = memoryview(json.dumps([dataclasses.asdict(f) for f in files]).encode())
        while view:
            view = view[os.write(write_fd, view) :]
        code = 0
    finally:
        os._exit(code)


def _receive(read_fd: int, pid: int) -> bytes:
    """The child's answer: bounded in size and time; the child is gone afterwards."""
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    chunks: list[bytes] = []
    total = 0
    try:
        while total <= CHILD_REPLY_LIMIT:
            ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise InputError(f"no answer within {CHILD_TIMEOUT_S:g}s")
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        else:
            raise InputError("answer too large")
    finally:
        os.close(read_fd)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) not in (0, -signal.SIGKILL) or not chunks:
        raise InputError("the reader running as the user failed")
    return b"".join(chunks)


def _as_user(entry: pwd.struct_passwd) -> list[IdeSettingsFile]:
    """The user's files read by a child with the user's uid, gid and no other groups.

    Root then never opens a file on a user's behalf: what the user cannot read, the audit
    does not read either. Run as that user already (or as a non-root auditor): read here.
    """
    if os.geteuid() != 0 or entry.pw_uid == 0:
        return user_files(entry.pw_name, Path(entry.pw_dir), entry.pw_uid)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        _child(entry, write_fd)
    os.close(write_fd)
    try:
        raw = json.loads(_receive(read_fd, pid), parse_constant=_not_finite)
        return [IdeSettingsFile(**item) for item in raw]
    except (InputError, ValueError, TypeError) as exc:
        return _failed(entry.pw_name, entry.pw_dir, f"could not read as {entry.pw_name}: {exc}")


def _not_finite(name: str) -> object:
    raise ValueError(f"{name} in the reader's answer")


def collect(users: Sequence[str]) -> IdeFacts:
    files: list[IdeSettingsFile] = []
    unknown: list[str] = []
    for user in users:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            unknown.append(user)
            continue
        files += _as_user(entry)
    return IdeFacts(tuple(files), tuple(unknown))

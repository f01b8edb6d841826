"""Continue's config.yaml and VS Code's settings.json for one developer, and writing them.

The files are laid out as in a home directory (`<out>/.continue/config.yaml`,
`<out>/.config/Code/User/settings.json`), so `--out` can be the developer's home or a
directory to copy from. Each begins with a marker line; an existing file is replaced only
when it is a regular file, owned by this user, that begins with the marker (one offgrid
wrote), so a developer's own settings are never overwritten. config.yaml carries the
credential (Continue's `apiKey`, which its Ollama and OpenAI providers send as
`Authorization: Bearer`) and is written 0600; the directories on the way are created 0700
and must not be symlinks.

Telemetry: config.yaml says `allowAnonymousTelemetry: false` (what OG-TEL-02 reads;
Continue's YAML loader ignores keys it does not know), and settings.json sets VS Code's
`telemetry.telemetryLevel` to "off" (OG-TEL-01) and `continue.telemetryEnabled` to false
(the switch current Continue releases honour, overriding its settings page).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from auditor import safeio
from auditor.errors import InputError
from auditor.fsutil import atomic_write_text
from auditor.ideconfig.models import ModelPlan

MARKER = "Written by offgrid ide-config"
CONTINUE_FILE = ".continue/config.yaml"
VSCODE_FILE = ".config/Code/User/settings.json"
CHAT_ROLES = ("chat", "edit", "apply")


@dataclass(frozen=True)
class Target:
    user: str
    url: str  # the gateway's (or engine's) base URL
    api: str  # "ollama" or "openai"


@dataclass(frozen=True)
class Written:
    path: Path
    mode: int
    holds_credential: bool


def _q(value: str) -> str:
    """A YAML double-quoted scalar (JSON string syntax is valid YAML)."""
    return json.dumps(value, ensure_ascii=True)


def api_base(target: Target) -> str:
    """The URL Continue resolves routes against: with a trailing slash, as its providers'
    defaults have it (`new URL("chat/completions", base)` keeps the path only then)."""
    base = target.url.rstrip("/")
    if target.api == "openai" and not base.endswith("/v1"):
        base += "/v1"
    return base + "/"


def _model_block(model: str, roles: tuple[str, ...], target: Target, token: str) -> list[str]:
    provider = "ollama" if target.api == "ollama" else "openai"
    lines = [
        f"  - name: {_q(f'{model} (offgrid)')}",
        f"    provider: {provider}",
        f"    model: {_q(model)}",
        f"    apiBase: {_q(api_base(target))}",
        f"    apiKey: {_q(token)}",
        "    roles:",
    ]
    return lines + [f"      - {role}" for role in roles]


def continue_yaml(target: Target, plan: ModelPlan, token: str) -> str:
    auto, chat = plan.autocomplete.model, plan.chat.model
    header = [
        f"# {MARKER} for {target.user}; models from the {plan.source}.",
        "# Holds this developer's gateway credential: keep it 0600, never commit it.",
        f"name: {_q(f'offgrid ({target.user})')}",
        'version: "1.0.0"',
        "schema: v1",
        "allowAnonymousTelemetry: false",
        "models:",
    ]
    if auto == chat:
        models = _model_block(auto, (*CHAT_ROLES, "autocomplete"), target, token)
    else:
        models = _model_block(chat, CHAT_ROLES, target, token)
        models += _model_block(auto, ("autocomplete",), target, token)
    return "\n".join(header + models) + "\n"


def vscode_settings(target: Target) -> str:
    body = json.dumps(
        {"telemetry.telemetryLevel": "off", "continue.telemetryEnabled": False}, indent=2
    )
    return f"// {MARKER} for {target.user}: telemetry off.\n{body}\n"


def _ensure_dirs(out: Path, relative: str, *, create: bool) -> None:
    """Check (and with `create`, make, 0700) the directories below `out` for `relative`;
    refuse a symlink or anything but a directory on the way."""
    current = out
    for part in Path(relative).parent.parts:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            if not create:
                return  # nothing below a missing directory can be in the way
            current.mkdir(mode=0o700)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise InputError(
                f"refusing to write below {current}: it is {safeio.kind_of(st.st_mode)}"
            )


def _check_replaceable(path: Path) -> None:
    """A file already there must be a regular file of ours that begins with the marker."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        raise InputError(f"refusing to overwrite {path}: not a regular file of this user")
    head = safeio.read_bytes(path, 1024 * 1024, follow=False)[:200].decode("utf-8", "replace")
    if MARKER not in head.split("\n", 1)[0]:
        raise InputError(
            f"refusing to overwrite {path}: it was not written by offgrid ide-config "
            "(move it away, or merge the settings by hand)"
        )


def check_out(out: Path) -> None:
    """`--out` is a real directory (created 0700 when missing, its parent must exist)."""
    try:
        st = os.lstat(out)
    except FileNotFoundError:
        if not out.parent.is_dir():
            raise InputError(f"--out {out}: its parent directory does not exist") from None
        out.mkdir(mode=0o700)
        return
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"--out {out}: is {safeio.kind_of(st.st_mode)}, not a directory")


def write_all(out: Path, target: Target, plan: ModelPlan, token: str) -> list[Written]:
    """Write both files (every check first, so a refusal writes neither)."""
    check_out(out)
    files = (
        (CONTINUE_FILE, continue_yaml(target, plan, token), 0o600, True),
        (VSCODE_FILE, vscode_settings(target), 0o644, False),
    )
    for relative, *_ in files:
        _ensure_dirs(out, relative, create=False)
        _check_replaceable(out / relative)
    written = []
    for relative, text, mode, secret in files:
        _ensure_dirs(out, relative, create=True)
        atomic_write_text(out / relative, text, mode=mode)
        written.append(Written(out / relative, mode, secret))
    return written

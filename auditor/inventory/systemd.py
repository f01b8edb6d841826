"""systemd units as configured: the unit file, every drop-in that applies, the environment.

With systemd running, `systemctl show` is the truth (it reports what systemd loaded).
Without it (containers, chroots, this tool run from a rescue shell) the same facts are
rebuilt from the files, following systemd's search path and drop-in rules.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from auditor.inventory.interface import UnitFacts

# Highest priority first: a unit file found earlier shadows the same name found later.
UNIT_DIRS: tuple[Path, ...] = (
    Path("/etc/systemd/system"),
    Path("/run/systemd/system"),
    Path("/usr/local/lib/systemd/system"),
    Path("/usr/lib/systemd/system"),
    Path("/lib/systemd/system"),
)

SHOW_PROPERTIES: tuple[str, ...] = (
    "Id",
    "LoadState",
    "ActiveState",
    "FragmentPath",
    "DropInPaths",
    "Environment",
    "EnvironmentFiles",
    "User",
    "Group",
    "IPAddressDeny",
    "IPAddressAllow",
    "ExecStart",
    "MainPID",
    "ControlGroup",
)


def systemd_running() -> bool:
    """True when systemd is PID 1 (the test sd_booted() uses)."""
    return Path("/run/systemd/system").is_dir()


@dataclass(frozen=True)
class Assignment:
    section: str
    key: str
    value: str
    source: str  # the file it came from


def parse_unit_text(text: str, source: str = "") -> list[Assignment]:
    """Parse a unit file or drop-in into ordered (section, key, value) assignments.

    Follows systemd's syntax: `#` and `;` start comment lines, a trailing backslash
    continues the line (joined with a space), keys and values are stripped.
    """
    assignments: list[Assignment] = []
    section = ""
    pending = ""
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        key, sep, value = line.partition("=")
        if sep:
            assignments.append(Assignment(section, key.strip(), value.strip(), source))
    if pending.strip():
        key, sep, value = pending.partition("=")
        if sep:
            assignments.append(Assignment(section, key.strip(), value.strip(), source))
    return assignments


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", " ": " "}


def split_words(value: str) -> list[str]:
    """Split a setting into words the way systemd's extract_first_word does for Environment=.

    Whitespace separates words; double or single quotes group (quotes may start
    mid-word, as in A="1 2"); backslash escapes the next character (C escapes
    \\n, \\t are decoded).
    """
    words: list[str] = []
    current: list[str] = []
    in_word = False
    quote: str | None = None
    chars = iter(value)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            current.append(_ESCAPES.get(nxt, nxt))
            in_word = True
        elif quote:
            if char == quote:
                quote = None
            else:
                current.append(char)
        elif char in "\"'":
            quote = char
            in_word = True
        elif char.isspace():
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
        else:
            current.append(char)
            in_word = True
    if in_word:
        words.append("".join(current))
    return words


def parse_environment_value(value: str) -> list[tuple[str, str]]:
    """The KEY=VALUE pairs of one Environment= line; words without "=" are ignored."""
    pairs = []
    for word in split_words(value):
        key, sep, val = word.partition("=")
        if sep and key:
            pairs.append((key, val))
    return pairs


def parse_environment_file(text: str) -> list[tuple[str, str]]:
    """KEY=VALUE lines of an EnvironmentFile= (shell-like quoting, # and ; comments)."""
    pairs: list[tuple[str, str]] = []
    pending = ""
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending += line[:-1]
            continue
        line, pending = pending + line, ""
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            continue
        words = split_words(value.strip())
        pairs.append((key, " ".join(words)))
    return pairs


def environment_file_entries(value: str) -> list[tuple[Path, bool]]:
    """EnvironmentFile= value → (path, optional); a leading "-" means ignore if missing."""
    entries = []
    for word in split_words(value):
        optional = word.startswith("-")
        entries.append((Path(word.lstrip("-")), optional))
    return entries


@dataclass(frozen=True)
class UnitFiles:
    fragment: Path | None
    dropins: tuple[Path, ...]


def find_unit_files(unit: str, dirs: Sequence[Path] = UNIT_DIRS) -> UnitFiles:
    """The unit file and its drop-ins in the order systemd applies them.

    Drop-ins come from `<unit>.d/` and the type-wide `<type>.d/` in every search
    directory; a file name in a higher-priority directory masks the same name in a
    lower one, and the survivors apply sorted by file name, later overriding earlier.
    """
    fragment = next((d / unit for d in dirs if (d / unit).is_file()), None)
    unit_type = unit.rsplit(".", 1)[-1]
    chosen: dict[str, Path] = {}
    for directory in dirs:
        for dropin_dir in (directory / f"{unit_type}.d", directory / f"{unit}.d"):
            if not dropin_dir.is_dir():
                continue
            for conf in dropin_dir.glob("*.conf"):
                chosen.setdefault(conf.name, conf)
    ordered = tuple(chosen[name] for name in sorted(chosen))
    return UnitFiles(fragment, ordered)


def _read(path: Path) -> str:
    return path.read_text("utf-8", errors="replace")


def merge_assignments(files: Iterable[Path]) -> list[Assignment]:
    merged: list[Assignment] = []
    for path in files:
        merged.extend(parse_unit_text(_read(path), str(path)))
    return merged


def _apply_environment(env: dict[str, str], value: str) -> None:
    if not value.strip():
        env.clear()  # an empty assignment resets the list built so far
        return
    env.update(parse_environment_value(value))


def _load_environment_files(entries: list[tuple[Path, bool]], missing: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for path, optional in entries:
        try:
            env.update(parse_environment_file(_read(path)))
        except OSError as exc:
            if not optional:
                missing.append(f"EnvironmentFile {path}: {exc.strerror or exc}")
    return env


def dropin_settings(paths: Iterable[Path]) -> dict[str, tuple[str, ...]]:
    """What each drop-in sets in [Service]: "Key", or "Environment:NAME" per variable.

    Lets OG-CFG-01 tell the engine's settings drop-in from sandboxing or egress ones.
    """
    settings: dict[str, tuple[str, ...]] = {}
    for path in paths:
        try:
            assignments = parse_unit_text(_read(path), str(path))
        except OSError:
            continue
        keys: list[str] = []
        for item in assignments:
            if item.section != "Service":
                continue
            if item.key == "Environment":
                keys += [f"Environment:{name}" for name, _ in parse_environment_value(item.value)]
            else:
                keys.append(item.key)
        settings[str(path)] = tuple(keys)
    return settings


def unit_from_files(unit: str, dirs: Sequence[Path] = UNIT_DIRS) -> UnitFacts | None:
    """Rebuild the unit's facts from disk; None when no unit file or drop-in exists."""
    files = find_unit_files(unit, dirs)
    if files.fragment is None and not files.dropins:
        return None
    ordered = ([files.fragment] if files.fragment else []) + list(files.dropins)
    env: dict[str, str] = {}
    env_files: list[tuple[Path, bool]] = []
    props: dict[str, str] = {}
    for item in merge_assignments(ordered):
        if item.section != "Service":
            continue
        if item.key == "Environment":
            _apply_environment(env, item.value)
        elif item.key == "EnvironmentFile":
            env_files = [] if not item.value else env_files + environment_file_entries(item.value)
        elif item.key in ("IPAddressDeny", "IPAddressAllow"):
            # list settings: an empty assignment resets, otherwise entries accumulate
            old = props.get(item.key, "")
            props[item.key] = " ".join(filter(None, [old, item.value])) if item.value else ""
        else:
            props[item.key] = item.value
    problems: list[str] = []
    env.update(_load_environment_files(env_files, problems))  # files override Environment=
    props["EnvironmentFiles"] = " ".join(str(p) for p, _ in env_files)
    if problems:
        props["EnvironmentFileErrors"] = "; ".join(problems)
    return UnitFacts(
        name=unit,
        fragment_path=str(files.fragment) if files.fragment else None,
        dropin_paths=tuple(str(p) for p in files.dropins),
        environment=env,
        properties=props,
        source="files",
        dropins_on_disk=tuple(str(p) for p in files.dropins),
        dropin_settings=dropin_settings(files.dropins),
    )


def parse_show_output(text: str) -> dict[str, str]:
    """`systemctl show -p …` output: one KEY=VALUE per line."""
    props: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            props[key] = value
    return props


def _show_environment_files(value: str) -> list[tuple[Path, bool]]:
    # systemctl prints "PATH (ignore_errors=yes)" per file, space separated
    entries: list[tuple[Path, bool]] = []
    words = value.split()
    for index, word in enumerate(words):
        if word.startswith("("):
            continue
        optional = index + 1 < len(words) and words[index + 1] == "(ignore_errors=yes)"
        entries.append((Path(word), optional))
    return entries


def unit_from_show(unit: str, show_text: str) -> UnitFacts | None:
    """UnitFacts from `systemctl show` output; None when systemd does not know the unit."""
    props = parse_show_output(show_text)
    if props.get("LoadState") in (None, "not-found"):
        return None
    env = dict(parse_environment_value(props.get("Environment", "")))
    problems: list[str] = []
    env.update(
        _load_environment_files(
            _show_environment_files(props.get("EnvironmentFiles", "")), problems
        )
    )
    if problems:
        props["EnvironmentFileErrors"] = "; ".join(problems)
    on_disk = find_unit_files(unit).dropins
    return UnitFacts(
        name=unit,
        fragment_path=props.get("FragmentPath") or None,
        dropin_paths=tuple(props.get("DropInPaths", "").split()),
        environment=env,
        properties=props,
        source="systemctl",
        dropins_on_disk=tuple(str(p) for p in on_disk),
        dropin_settings=dropin_settings(on_disk),
    )


def systemctl(*args: str, timeout_s: float = 10.0) -> str | None:
    """systemctl's output (no pager, C locale); None when it is missing, hangs or fails."""
    binary = shutil.which("systemctl")
    if binary is None:
        return None
    try:
        done = subprocess.run(
            [binary, *args, "--no-pager"], capture_output=True, text=True, timeout=timeout_s,
            check=False, env={**os.environ, "SYSTEMD_PAGER": "", "LC_ALL": "C"},
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def systemctl_show(unit: str, timeout_s: float = 10.0) -> str | None:
    return systemctl("show", unit, "-p", ",".join(SHOW_PROPERTIES), timeout_s=timeout_s)


def read_unit(unit: str, use_systemctl: bool) -> UnitFacts | None:
    """The unit as systemd sees it when it runs, else as the files describe it."""
    if use_systemctl:
        shown = systemctl_show(unit)
        if shown is not None:
            return unit_from_show(unit, shown)
    return unit_from_files(unit)

"""The one way in: every file and stream offgrid reads goes through these functions.

A reader here never trusts what it is given: only regular files are opened (a FIFO or a
device node is refused without blocking, since the open is non-blocking), the byte cap is
enforced while reading (a file's size as reported by stat() is not trusted), text must be
strict UTF-8, structured data is bounded in nesting depth and number size, and only finite
numbers are accepted. Every refusal is an InputError: one line, exit 2.

Files that another user controls (a developer's IDE settings read by the root audit) are
opened with `open_user_file`: each directory on the way and the file itself are opened
relative to the previous one without following symlinks, and the file must be a regular
file owned by that user (a hard link to a root-owned file is refused).
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from auditor.errors import InputError

DEFAULT_LIMIT = 16 * 1024 * 1024  # configuration, prices, references, settings
REPORT_LIMIT = 64 * 1024 * 1024  # saved reports and benchmark results
MAX_DEPTH = 64  # nesting of arrays/objects/tables: deeper is nothing offgrid writes or reads
MAX_INT_DIGITS = 300  # larger integers do not fit a float, and nothing offgrid reads needs them
MAX_NUMBER_CHARS = 400
_CHUNK = 1024 * 1024


def _open_flags(follow: bool) -> int:
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    return flags if follow else flags | os.O_NOFOLLOW


def describe_oserror(path: Path | str, exc: OSError, action: str = "cannot read") -> InputError:
    """An OSError as a one-line InputError naming the path."""
    reasons = {
        errno.ENOENT: "no such file",
        errno.EISDIR: "is a directory, not a regular file",
        errno.ELOOP: "is a symlink (refused)",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOTDIR: "a component of the path is not a directory",
        errno.ENOSPC: f"{action}: no space left on the device",
        errno.EROFS: f"{action}: read-only file system",
    }
    reason = reasons.get(exc.errno or 0, f"{action}: {exc.strerror or exc}")
    return InputError(f"{path}: {reason}")


def kind_of(mode: int) -> str:
    """A file type in words, for messages about what was found instead of a regular file."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symlink"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_fd(fd: int, source: str, limit: int) -> bytes:
    """Everything in the open regular file `fd`, at most `limit` bytes (more: InputError)."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{source}: is {kind_of(st.st_mode)}, not a regular file")
    os.set_blocking(fd, True)
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise InputError(f"{source}: larger than {_size(limit)} (refused)")


def _size(limit: int) -> str:
    return f"{limit // 2**20} MiB" if limit >= 2**20 else f"{limit} bytes"


def label(path: Path, what: str) -> str:
    """How messages name a file: `price file /x.toml`, or just the path."""
    return f"{what} {path}" if what else str(path)


def read_bytes(
    path: Path, limit: int = DEFAULT_LIMIT, *, follow: bool = True, what: str = ""
) -> bytes:
    """The bytes of the regular file `path`; anything else or anything larger: InputError."""
    shown = label(path, what)
    try:
        fd = os.open(path, _open_flags(follow))
    except OSError as exc:
        raise describe_oserror(shown, exc) from None
    try:
        return read_fd(fd, shown, limit)
    except OSError as exc:
        raise describe_oserror(shown, exc) from None
    finally:
        os.close(fd)


def present(path: Path) -> bool:
    """Whether anything (even a dangling symlink) is at `path`; cannot tell: InputError."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise describe_oserror(path, exc) from None
    return True


def decode(data: bytes, source: str) -> str:
    """Strict UTF-8 (a leading byte-order mark is dropped)."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: not UTF-8 (invalid byte at offset {exc.start})") from None


def read_text(
    path: Path, limit: int = DEFAULT_LIMIT, *, follow: bool = True, what: str = ""
) -> str:
    return decode(read_bytes(path, limit, follow=follow, what=what), label(path, what))


# ---- structured data ---------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"number of {len(text)} characters is too long")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is not a finite number")
    return value


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("+-").replace("_", ""))
    if digits > MAX_INT_DIGITS:
        raise ValueError(f"integer of {digits} digits is too large")
    return int(text)


def _walk(value: Any) -> Iterator[tuple[Any, int]]:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        yield item, depth
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def check_bounds(value: Any, source: str) -> Any:
    """Nesting depth, integer size and finiteness of an already parsed value."""
    for item, depth in _walk(value):
        if depth > MAX_DEPTH:
            raise InputError(f"{source}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, bool):
            continue
        if isinstance(item, int) and item.bit_length() > MAX_INT_DIGITS * 3.33:
            raise InputError(f"{source}: integer too large")
        if isinstance(item, float) and not math.isfinite(item):
            raise InputError(f"{source}: {item} is not a finite number")
    return value


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def _max_bracket_depth(text: str) -> int:
    """How deeply [ and { nest outside strings (a cheap scan before recursive parsing)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                break
        else:
            depth -= 1
    return deepest


def parse_json(data: bytes | str, source: str) -> Any:
    """Strict JSON: UTF-8, finite numbers, bounded depth and number size."""
    text = decode(data, source) if isinstance(data, bytes) else data
    if _max_bracket_depth(text) > MAX_DEPTH:
        raise InputError(f"{source}: nested deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
        )
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{source}: not JSON ({exc.msg}, line {exc.lineno} column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{source}: not usable JSON: {exc}") from None
    return check_bounds(value, source)


def load_json(
    path: Path, limit: int = DEFAULT_LIMIT, *, follow: bool = True, what: str = ""
) -> Any:
    return parse_json(read_bytes(path, limit, follow=follow, what=what), label(path, what))


def _toml_float(text: str) -> float:
    if text.lstrip("+-") in ("inf", "nan"):
        raise ValueError(f"{text} is not a finite number")
    return _parse_float(text)


def parse_toml(data: bytes | str, source: str) -> dict[str, Any]:
    """Strict TOML: UTF-8, finite numbers, bounded depth and number size."""
    text = decode(data, source) if isinstance(data, bytes) else data
    if _max_bracket_depth(text) > MAX_DEPTH:
        raise InputError(f"{source}: nested deeper than {MAX_DEPTH} levels")
    try:
        value = tomllib.loads(text, parse_float=_toml_float)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source}: not TOML: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{source}: not usable TOML: {exc}") from None
    return check_bounds(value, source)  # type: ignore[no-any-return]


def load_toml(path: Path, limit: int = DEFAULT_LIMIT, *, what: str = "") -> dict[str, Any]:
    return parse_toml(read_bytes(path, limit, what=what), label(path, what))


# ---- shapes ------------------------------------------------------------------------------


def _join(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def table(value: Any, where: str, source: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"{source}: {where or 'top level'}: expected a table")
    return value


def array(value: Any, where: str, source: str) -> list[Any]:
    if not isinstance(value, list):
        raise InputError(f"{source}: {where}: expected an array")
    return value


def number(
    parent: Mapping[str, Any],
    key: str,
    where: str,
    source: str,
    *,
    minimum: float = 0.0,
    maximum: float = 1e15,
    default: float | None = None,
) -> float:
    """A number in [minimum, maximum] at parent[key] (a missing key takes `default` if given).

    The default maximum keeps products of a few such numbers far from float overflow.
    """
    value = parent.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{source}: {_join(where, key)}: expected a number")
    result = float(value)
    if not minimum <= result <= maximum:
        raise InputError(
            f"{source}: {_join(where, key)}: expected a number from {minimum:g} to {maximum:g}"
        )
    return result


def text(parent: Mapping[str, Any], key: str, where: str, source: str, default: str) -> str:
    value = parent.get(key, default)
    if not isinstance(value, str):
        raise InputError(f"{source}: {_join(where, key)}: expected a string")
    return value


# ---- files other users control -----------------------------------------------------------


def _open_dir_at(parent: int | None, name: str, shown: str) -> int:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(name, flags, dir_fd=parent) if parent is not None else os.open(name, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise describe_oserror(shown, exc) from None


def open_user_file(home: Path, relative: str, uid: int | None) -> int:
    """An fd for home/relative opened without following any symlink below `home`.

    Every directory below `home` is opened with O_NOFOLLOW relative to its parent, the
    last component with O_NOFOLLOW|O_NONBLOCK; the result must be a regular file owned by
    `uid` (when given). A missing file or directory raises FileNotFoundError; any other
    deviation is an InputError naming the path.
    """
    parts = [p for p in relative.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise InputError(f"{home / relative}: not a plain relative path")
    try:  # the home directory itself comes from the password database, not from the user
        fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise describe_oserror(home, exc) from None
    try:
        shown = home
        for part in parts[:-1]:
            shown = shown / part
            next_fd = _open_dir_at(fd, part, str(shown))
            os.close(fd)
            fd = next_fd
        shown = shown / parts[-1]
        try:
            file_fd = os.open(parts[-1], _open_flags(follow=False), dir_fd=fd)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise describe_oserror(shown, exc) from None
    finally:
        os.close(fd)
    st = os.fstat(file_fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(file_fd)
        raise InputError(f"{shown}: is {kind_of(st.st_mode)}, not a regular file")
    if uid is not None and st.st_uid != uid:
        os.close(file_fd)
        raise InputError(f"{shown}: owned by uid {st.st_uid}, not by the user (uid {uid})")
    return file_fd


def read_user_text(home: Path, relative: str, uid: int | None, limit: int = 1024 * 1024) -> str:
    shown = str(home / relative)
    fd = open_user_file(home, relative, uid)
    try:
        return decode(read_fd(fd, shown, limit), shown)
    except OSError as exc:
        raise describe_oserror(shown, exc) from None
    finally:
        os.close(fd)

"""The one way out: atomic writes that replace only a regular file (or nothing).

A reader never sees half a file: data goes to a temporary file in the same directory,
is fsync()ed and renamed over the target. The target must be missing or a regular file
owned by the writer; a symlink, directory, FIFO, socket or device node is refused (renaming
over /dev/null would replace the system's /dev/null). `preflight` runs the same checks plus
a real write probe before a long audit or benchmark, so an unusable destination is found
before the work, not after. Temporaries are named `.<target>.<pid>.<random>.tmp`; those
left by a writer that was killed (its pid no longer runs) are removed by the next write.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

from auditor.errors import InputError
from auditor.safeio import kind_of

_TMP = re.compile(r"\A\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp\Z")


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or str(exc)


def _directory(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def check_target(path: Path) -> None:
    """Refuse a destination that is not a missing or regular file we own, in a directory."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {_why(exc)}") from None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise InputError(f"refusing to write through a symlink: {path}")
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"refusing to write to {path}: it is {kind_of(st.st_mode)}")
        if st.st_uid != os.geteuid():
            raise InputError(f"refusing to overwrite {path}: owned by uid {st.st_uid}")
    directory = _directory(path)
    if not directory.is_dir():
        raise InputError(f"output directory does not exist: {directory}")


def preflight(path: Path) -> None:
    """Before long work: the target is acceptable and its directory takes a new file."""
    check_target(path)
    directory = _directory(path)
    try:
        fd, name = tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=".tmp", dir=directory)
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {_why(exc)}") from None
    os.close(fd)
    os.unlink(name)


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete this writer's temporaries for `path` whose writing process no longer runs."""
    return remove_stale_in(_directory(path), path.name)


def remove_stale_in(directory: Path, name: str | None = None) -> list[Path]:
    """Delete the temporaries in `directory` (for target `name`, or any) of dead writers."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            match = _TMP.match(entry.name)
            if not match or name not in (None, match["name"]) or _pid_alive(int(match["pid"])):
                continue
            with contextlib.suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid():
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o640) -> None:
    """Write data to path via a temporary file in the same directory and rename."""
    check_target(path)
    remove_stale_temporaries(path)
    directory = _directory(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=".tmp", dir=directory)
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {_why(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        check_target(path)  # nothing was put in its place while we wrote
        os.replace(tmp_name, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise InputError(f"{path}: cannot write: {_why(exc)} (nothing written)") from None
        raise
    fsync_directory(directory)


def atomic_write_text(path: Path, text: str, mode: int = 0o640) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def dumps_json(data: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """Strict JSON text: NaN, Infinity or an unserializable value is an error, never output."""
    try:
        return json.dumps(data, indent=indent, sort_keys=sort_keys, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"result cannot be written as JSON: {exc}") from None


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""Reading a credential without it ever being on a command line.

From a file (a regular file that neither group nor others can read: a token that others
can read is already leaked), from standard input, or from an environment variable. The
value is one line of visible ASCII (what an HTTP header can carry), at most 4 KiB.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from auditor import safeio
from auditor.errors import InputError

LIMIT = 4096
ENV_VAR = "OFFGRID_API_KEY"
_VISIBLE = re.compile(r"\A[\x21-\x7e]{1,4096}\Z")


def bearer_value(data: bytes, source: str) -> str:
    """The credential in `data` (one trailing newline allowed); never echoed in errors."""
    text = safeio.decode(data, source).removesuffix("\n").removesuffix("\r")
    if not _VISIBLE.match(text):
        raise InputError(
            f"{source}: not a credential (one line of visible ASCII, 1 to {LIMIT} characters)"
        )
    return text


def read_file(path: Path, what: str = "credential file") -> str:
    shown = f"{what} {path}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise safeio.describe_oserror(shown, exc) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
            raise InputError(f"{shown}: readable by group or others; chmod 600 it first")
        data = safeio.read_fd(fd, shown, LIMIT + 2)
    except OSError as exc:
        raise safeio.describe_oserror(shown, exc) from None
    finally:
        os.close(fd)
    return bearer_value(data, shown)


def read_stream(stream: BinaryIO, what: str = "standard input") -> str:
    data = stream.read(LIMIT + 3)
    if len(data) > LIMIT + 2:
        raise InputError(f"{what}: more than {LIMIT} bytes; expected one credential")
    return bearer_value(data, what)


def from_environment(environ: Mapping[str, str], name: str = ENV_VAR) -> str | None:
    value = environ.get(name)
    if value is None:
        return None
    return bearer_value(value.encode("utf-8", "surrogateescape"), f"${name}")

"""Secret keys only their owner can read: created 0600 on first use, refused when exposed.

Shared by the integrity hash cache and the report history, whose HMACs are only worth
something while nobody but the auditor (root) can read the key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

KEY_BYTES = 32


def load_key(path: Path, what: str, *, create: bool) -> tuple[bytes | None, str]:
    """The key in `path` (created when `create` and missing); None and why when unusable.

    A key owned by someone else or readable by group/others is refused: whoever can read
    it can forge what it authenticates.
    """
    try:
        if create:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(secrets.token_bytes(KEY_BYTES))
                    handle.flush()
                    os.fsync(handle.fileno())
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            key = handle.read()
    except OSError as exc:
        return None, f"{what} {path} unusable: {exc.strerror}"
    if st.st_uid != os.geteuid() or st.st_mode & 0o077:
        return None, f"{what} {path} is readable or owned by someone else"
    if len(key) < KEY_BYTES:
        return None, f"{what} {path} is too short"
    return key, ""

"""Copy a file into a store while hashing it, so what lands is exactly what was checked."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from auditor.errors import InputError
from auditor.models.hashing import CHUNK, FileHash, Progress


def copy_hashed(
    source: Path,
    dest: Path,
    expected_sha256: str | None = None,
    progress: Progress | None = None,
    mode: int = 0o644,
) -> FileHash:
    """Copy source to dest via a temporary file in dest's directory, hashing the bytes read.

    With expected_sha256 the copy is only renamed into place when the digest matches, so a
    corrupted source never becomes a blob; the temporary file is removed on every failure.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb", buffering=0) as src:
            buffer = memoryview(bytearray(CHUNK))
            while count := src.readinto(buffer):
                digest.update(buffer[:count])
                out.write(buffer[:count])
                size += count
                if progress:
                    progress(count)
            out.flush()
            os.fsync(out.fileno())
        if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
            raise InputError(
                f"{source}: sha256 {digest.hexdigest()} does not match the pinned {expected_sha256}"
            )
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, dest)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise InputError(f"cannot copy {source} to {dest}: {exc.strerror}") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return FileHash(dest, digest.hexdigest(), size)

"""Write an evidence pack: a directory, a tarball of it and the tarball's sha256.

Reproducible: the same histories and period give the same bytes, the tarball included —
entries sorted, every mtime the period's last second, uid/gid 0 without names, modes 0644
and 0755, gzip without a name or time. The manifest's optional signature (`ssh-keygen -Y
sign`, namespace offgrid-evidence) is reproducible too with an Ed25519 or RSA key, whose
signatures are deterministic. The directory appears whole or not at all: it is written
beside its final place and renamed; an earlier pack there (a directory with a manifest) is
replaced, anything else is refused.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from auditor.errors import InputError
from auditor.fsutil import atomic_write_bytes
from auditor.report.evidence_files import MANIFEST
from auditor.sshkeygen import ssh_keygen

NAMESPACE = "offgrid-evidence"
SIGNATURE = MANIFEST + ".sig"


@dataclass(frozen=True)
class WrittenPack:
    directory: Path
    tarball: Path
    tarball_sha256: str
    files: int
    signed: bool


def fixed_mtime(until: str) -> int:
    """The last second of the period (UTC): every file's time in the pack."""
    end = datetime.fromisoformat(f"{until}T23:59:59+00:00")
    return int(end.astimezone(UTC).timestamp())


def sign_manifest(manifest: bytes, private_key: Path) -> bytes:
    if not private_key.is_file():
        raise InputError(f"SSH key {private_key}: no such file")
    done = ssh_keygen(["-Y", "sign", "-n", NAMESPACE, "-f", str(private_key)], manifest)
    if done.returncode != 0 or b"BEGIN SSH SIGNATURE" not in done.stdout:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(f"ssh-keygen could not sign: {message[0] if message else 'no output'}")
    return done.stdout


def _directories(names: list[str]) -> list[str]:
    found = {str(parent) for name in names for parent in PurePosixPath(name).parents}
    return sorted(found - {"."})


def tarball(files: Mapping[str, bytes], top: str, mtime: int) -> bytes:
    raw = io.BytesIO()
    names = sorted(files)
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name in ["", *_directories(names), *names]:
            is_dir = name == "" or name not in files
            info = tarfile.TarInfo(f"{top}/{name}".rstrip("/"))
            info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "", ""
            if is_dir:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            else:
                info.mode, info.size = 0o644, len(files[name])
                archive.addfile(info, io.BytesIO(files[name]))
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue()


def _check_destination(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InputError(f"{out}: exists and is not a directory")
    if out.is_dir() and not (out / MANIFEST).is_file():
        raise InputError(f"{out}: exists and is not an evidence pack; choose another --out")
    if not out.parent.is_dir():
        raise InputError(f"output directory does not exist: {out.parent}")


def _write_tree(root: Path, files: Mapping[str, bytes], mtime: int) -> None:
    for name in sorted(files):
        path = root / name
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(files[name])
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(path, 0o644)  # whatever the umask
        os.utime(path, (mtime, mtime))
    for directory in sorted({p for p in root.rglob("*") if p.is_dir()} | {root}, reverse=True):
        os.chmod(directory, 0o755)  # noqa: S103 (a pack is for reading by anyone given it)
        os.utime(directory, (mtime, mtime))


def write_pack(
    out: Path, files: Mapping[str, bytes], top: str, until: str, ssh_key: Path | None = None
) -> WrittenPack:
    _check_destination(out)
    contents = dict(files)
    if ssh_key is not None:
        contents[SIGNATURE] = sign_manifest(contents[MANIFEST], ssh_key)
    mtime = fixed_mtime(until)
    packed = tarball(contents, top, mtime)  # built first: nothing is written if this fails
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _write_tree(scratch, contents, mtime)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.rename(out, old / "pack")
            os.rename(scratch, out)
            shutil.rmtree(old)
        else:
            os.rename(scratch, out)
    except OSError as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        raise InputError(f"{out}: cannot write the pack: {exc.strerror}") from exc
    archive = out.with_name(f"{out.name}.tar.gz")
    digest = hashlib.sha256(packed).hexdigest()
    atomic_write_bytes(archive, packed, mode=0o644)
    checksum = f"{digest}  {archive.name}\n".encode("ascii")
    atomic_write_bytes(archive.with_name(f"{archive.name}.sha256"), checksum, mode=0o644)
    return WrittenPack(out, archive, digest, len(contents), ssh_key is not None)

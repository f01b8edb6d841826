"""SSH signatures of a bundle's lock: the staging box signs, the controller and target verify.

The lock pins every file of the bundle by sha256 and size (engines, models, Debian packages,
the known-vulnerability table and the auditor wheelhouse), so a signature over the lock's
bytes covers every file. `ssh-keygen -Y sign` with the namespace `offgrid-bundle`
writes `offgrid.lock.json.sig` beside the lock; `ssh-keygen -Y verify` checks it against an
allowed-signers file holding only public keys. A signature made for another namespace (a
history head, an e-mail) never passes for a lock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass, replace
from pathlib import Path

from auditor import safeio
from auditor.errors import InputError
from auditor.fsutil import atomic_write_bytes
from auditor.sshkeygen import ssh_keygen

NAMESPACE = "offgrid-bundle"
SIGNATURE_SUFFIX = ".sig"
MAX_SIGNATURE_BYTES = 64 * 1024
_ARMOR_BEGIN = b"-----BEGIN SSH SIGNATURE-----"
_ARMOR_END = b"-----END SSH SIGNATURE-----"


@dataclass(frozen=True)
class SignatureInfo:
    """What an SSH signature says about itself (before anyone trusts it)."""

    fingerprint: str  # SHA256:<base64> of the signing public key, as ssh-keygen -l prints it
    namespace: str


@dataclass(frozen=True)
class LockSignature:
    """The outcome of checking a lock's signature. status: ok | unsigned | malformed |
    wrong-namespace | unknown-key | mismatch."""

    status: str
    reason: str  # one line, for the terminal and the report
    fingerprint: str | None = None
    signer: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def signature_path(lock_path: Path) -> Path:
    return lock_path.with_name(lock_path.name + SIGNATURE_SUFFIX)


def _string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise ValueError("truncated")
    (length,) = struct.unpack(">I", blob[offset : offset + 4])
    end = offset + 4 + length
    if end > len(blob):
        raise ValueError("truncated")
    return blob[offset + 4 : end], end


def parse_signature(armored: bytes) -> SignatureInfo:
    """The key fingerprint and namespace inside an armored SSH signature (PROTOCOL.sshsig)."""
    text = armored.strip()
    if not (text.startswith(_ARMOR_BEGIN) and text.endswith(_ARMOR_END)):
        raise ValueError("not an armored SSH signature")
    body = b"".join(text[len(_ARMOR_BEGIN) : -len(_ARMOR_END)].split())
    try:
        blob = base64.b64decode(body, validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64") from exc
    if blob[:6] != b"SSHSIG" or len(blob) < 10:
        raise ValueError("no SSHSIG magic")
    public_key, offset = _string(blob, 10)
    namespace, _ = _string(blob, offset)
    digest = base64.b64encode(hashlib.sha256(public_key).digest()).decode().rstrip("=")
    return SignatureInfo(f"SHA256:{digest}", namespace.decode("utf-8", "replace"))


def _lock_bytes(lock_path: Path) -> bytes:
    return safeio.read_bytes(lock_path, what="lock file")


def _first_line(output: bytes) -> str:
    lines = output.decode("utf-8", "replace").strip().splitlines()
    return lines[0] if lines else "no output"


def sign_lock(lock_path: Path, private_key: Path) -> tuple[Path, SignatureInfo]:
    """Sign the lock's bytes; the signature goes beside it (0644: it is public)."""
    if not private_key.is_file():
        raise InputError(f"SSH key {private_key}: no such file")
    done = ssh_keygen(
        ["-Y", "sign", "-n", NAMESPACE, "-f", str(private_key)], _lock_bytes(lock_path)
    )
    if done.returncode != 0 or _ARMOR_BEGIN not in done.stdout:
        raise InputError(f"ssh-keygen could not sign: {_first_line(done.stderr)}")
    path = signature_path(lock_path)
    if path.exists() and not path.is_file():
        raise InputError(f"{path}: exists and is not a regular file")
    atomic_write_bytes(path, done.stdout, mode=0o644)
    return path, parse_signature(done.stdout)


def _read_signature(path: Path) -> bytes | None:
    """The signature's bytes (None: there is none); a FIFO, device or huge file: InputError."""
    if not safeio.present(path):
        return None
    return safeio.read_bytes(path, MAX_SIGNATURE_BYTES, what="lock signature")


def inspect_lock_signature(lock_path: Path) -> LockSignature:
    """What can be said without an allowed-signers file: whether the lock carries a signature
    in the bundle namespace that its own key verifies (not whether that key is trusted)."""
    path = signature_path(lock_path)
    armored = _read_signature(path)
    if armored is None:
        return LockSignature("unsigned", f"no signature {path.name} beside the lock")
    try:
        info = parse_signature(armored)
    except ValueError as exc:
        return LockSignature("malformed", f"{path.name} is not an SSH signature ({exc})")
    if info.namespace != NAMESPACE:
        return LockSignature(
            "wrong-namespace",
            f"{path.name} signs for namespace {info.namespace!r}, not {NAMESPACE!r}",
            info.fingerprint,
        )
    done = ssh_keygen(
        ["-Y", "check-novalidate", "-n", NAMESPACE, "-s", str(path)], _lock_bytes(lock_path)
    )
    if done.returncode != 0:
        return LockSignature(
            "mismatch",
            f"signature by key {info.fingerprint} does not match the lock: "
            "the lock changed after it was signed",
            info.fingerprint,
        )
    return LockSignature("ok", f"lock signed by key {info.fingerprint}", info.fingerprint)


def verify_lock(lock_path: Path, allowed_signers: Path) -> LockSignature:
    """Whether the lock is signed, in the bundle namespace, by a key allowed_signers lists,
    over exactly these bytes. Each way to fail has its own status and one-line reason."""
    if not allowed_signers.is_file():
        raise InputError(f"allowed signers {allowed_signers}: no such file")
    found = inspect_lock_signature(lock_path)
    if found.status != "ok":
        return found
    path = signature_path(lock_path)
    principals = ssh_keygen(
        ["-Y", "find-principals", "-s", str(path), "-f", str(allowed_signers)], b""
    )
    names = principals.stdout.decode("utf-8", "replace").split()
    if principals.returncode != 0 or not names:
        return LockSignature(
            "unknown-key",
            f"signed by key {found.fingerprint}, which {allowed_signers} does not allow",
            found.fingerprint,
        )
    done = ssh_keygen(
        ["-Y", "verify", "-n", NAMESPACE, "-f", str(allowed_signers), "-I", names[0],
         "-s", str(path)],
        _lock_bytes(lock_path),
    )  # fmt: skip
    if done.returncode != 0:
        return LockSignature(
            "unknown-key",
            f"{names[0]} (key {found.fingerprint}) may not sign bundles: "
            f"{_first_line(done.stderr)}",
            found.fingerprint,
        )
    return LockSignature(
        "ok", f"lock signed by {names[0]} (key {found.fingerprint})", found.fingerprint, names[0]
    )


@dataclass(frozen=True)
class SignerFact:
    """Which key signed the lock an audit runs, and whether the audit's allowed signers
    vouch for it. status: verified | unsigned | unverifiable (signed, no usable allowed
    signers configured) | not-allowed | mismatch | malformed | wrong-namespace."""

    status: str
    reason: str  # one line, said plainly
    signature_path: str
    fingerprint: str | None = None  # SHA256:<base64>, as ssh-keygen -l prints it
    namespace: str | None = None
    principal: str | None = None  # the allowed signer the key belongs to (verified only)
    allowed_signers: str | None = None  # the file it was checked against; None: none given


_BAD = {"unsigned", "malformed", "wrong-namespace", "mismatch"}


def _namespace(path: Path) -> str | None:
    try:
        armored = _read_signature(path)
        return parse_signature(armored).namespace if armored is not None else None
    except (InputError, ValueError):
        return None


def signer_fact(lock_path: Path, allowed_signers: Path | None) -> SignerFact:
    """The lock's signer as a fact for the report; an unreadable file or a missing
    ssh-keygen is `unverifiable` with the reason, never an exception."""
    path = signature_path(lock_path)
    try:
        return _signer_fact(lock_path, path, allowed_signers)
    except InputError as exc:
        where = None if allowed_signers is None else str(allowed_signers)
        return SignerFact(
            "unverifiable", f"cannot check the lock's signature: {exc}", str(path),
            allowed_signers=where,
        )  # fmt: skip


def _signer_fact(lock_path: Path, path: Path, allowed_signers: Path | None) -> SignerFact:
    found = inspect_lock_signature(lock_path)
    base = SignerFact(found.status, found.reason, str(path), found.fingerprint, _namespace(path))
    if found.status in _BAD:
        return base
    if allowed_signers is None:
        return replace(
            base,
            status="unverifiable",
            reason=f"{found.reason}, but no allowed signers are configured for the audit "
            "(--allowed-signers): who holds that key is not proven",
        )
    if not safeio.present(allowed_signers):
        return replace(
            base,
            status="unverifiable",
            reason=f"{found.reason}, but the allowed signers {allowed_signers} are missing",
            allowed_signers=str(allowed_signers),
        )
    checked = verify_lock(lock_path, allowed_signers)
    status = "verified" if checked.ok else "not-allowed"
    if checked.status in _BAD:
        status = checked.status
    return replace(
        base,
        status=status,
        reason=checked.reason,
        principal=checked.signer,
        allowed_signers=str(allowed_signers),
    )

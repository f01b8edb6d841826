"""SSH signatures of a history's head: verifiable by anyone holding the public key.

The chain's HMAC proves nothing to a third party (verifying it needs the secret key). An
SSH signature does: `ssh-keygen -Y sign` (OpenSSH >= 8.1, present on every host offgrid
provisions) signs the head entry's hash with a private key, and an auditor checks it with an
allowed_signers file holding only public keys. No crypto library is added for this.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from auditor.errors import InputError
from auditor.fsutil import atomic_write_bytes
from auditor.report.history import SIGNATURES_DIR, Entry, Problem
from auditor.sshkeygen import ssh_keygen

NAMESPACE = "offgrid-history"
TIMEOUT_S = 30.0


def signed_message(entry: Entry) -> bytes:
    return f"offgrid-history v1\nseq {entry.seq}\nentry_hash {entry.entry_hash}\n".encode()


def signature_path(directory: Path, seq: int) -> Path:
    return directory / SIGNATURES_DIR / f"{seq:06d}.sig"


def _first_line(output: bytes) -> str:
    lines = output.decode("utf-8", "replace").strip().splitlines()
    return lines[0] if lines else "no output"


def sign_head(directory: Path, entry: Entry, private_key: Path) -> Path:
    """Sign `entry` (the head) with an SSH private key; the signature goes to signatures/."""
    if not private_key.is_file():
        raise InputError(f"SSH key {private_key}: no such file")
    done = ssh_keygen(
        ["-Y", "sign", "-n", NAMESPACE, "-f", str(private_key)], signed_message(entry)
    )
    if done.returncode != 0 or b"BEGIN SSH SIGNATURE" not in done.stdout:
        raise InputError(f"ssh-keygen could not sign: {_first_line(done.stderr)}")
    path = signature_path(directory, entry.seq)
    atomic_write_bytes(path, done.stdout, mode=0o644)
    return path


def _signer(signature: Path, allowed_signers: Path) -> str | None:
    done = ssh_keygen(
        ["-Y", "find-principals", "-s", str(signature), "-f", str(allowed_signers)], b""
    )
    principals = done.stdout.decode("utf-8", "replace").split()
    return principals[0] if done.returncode == 0 and principals else None


def verify_signature(entry: Entry, signature: Path, allowed_signers: Path) -> str | None:
    """The signer's identity when `signature` signs `entry` by an allowed key, else None."""
    signer = _signer(signature, allowed_signers)
    if signer is None:
        return None
    done = ssh_keygen(
        ["-Y", "verify", "-n", NAMESPACE, "-f", str(allowed_signers), "-I", signer,
         "-s", str(signature)],
        signed_message(entry),
    )  # fmt: skip
    return signer if done.returncode == 0 else None


def check_signatures(
    directory: Path, entries: tuple[Entry, ...], allowed_signers: Path
) -> Iterator[Problem | str]:
    """Problems with the signatures, or a note naming who signed the head.

    Every signature present must verify, and the head must be signed: an unsigned head means
    entries were appended by someone without the key (or the signing step was skipped).
    """
    if not allowed_signers.is_file():
        raise InputError(f"allowed signers {allowed_signers}: no such file")
    for entry in entries:
        path = signature_path(directory, entry.seq)
        if not path.exists():
            continue
        signer = verify_signature(entry, path, allowed_signers)
        if signer is None:
            yield Problem(
                entry.seq, f"signature {path.name} does not verify with {allowed_signers}"
            )
        elif entry is entries[-1]:
            yield f"head (entry {entry.seq}) signed by {signer}"
    if entries and not signature_path(directory, entries[-1].seq).exists():
        yield Problem(entries[-1].seq, "the head is not signed")

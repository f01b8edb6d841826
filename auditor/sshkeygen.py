"""Run `ssh-keygen -Y` (OpenSSH >= 8.1) for the SSH signatures of histories and bundle locks."""

from __future__ import annotations

import shutil
import subprocess

from auditor.errors import InputError

TIMEOUT_S = 30.0


def ssh_keygen(args: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    binary = shutil.which("ssh-keygen")
    if binary is None:
        raise InputError("ssh-keygen not found: install openssh-client to sign or verify")
    try:
        # a new session has no terminal: a key with a passphrase fails instead of prompting
        return subprocess.run(
            [binary, *args],
            input=data,
            capture_output=True,
            timeout=TIMEOUT_S,
            start_new_session=True,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InputError(f"ssh-keygen {args[1]} timed out") from exc

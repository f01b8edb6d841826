"""Shared helpers for the models integration tests: run the CLI, build a real bundle."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from auditor.cli import main
from auditor.console import Console
from auditor.embedded.llamacpp import bundled_model_path

REPO = Path(__file__).resolve().parents[2]
TUNED_MODELFILE = REPO / "auditor/data/modelfiles/smollm2-135m-tuned.Modelfile"
TUNED = "smollm2:135m-tuned"
TUNED_FULL = "registry.ollama.ai/library/smollm2:135m-tuned"


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str


def offgrid(*argv: str | Path) -> CliRun:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], Console(stdout=out, stderr=err))
    return CliRun(code, out.getvalue(), err.getvalue())


def sha256sum(path: Path) -> str:
    """The digest as coreutils computes it: the reference the tests trust."""
    out = subprocess.run(["sha256sum", str(path)], check=True, capture_output=True, text=True)
    return out.stdout.split()[0]


def build_bundle(bundle: Path) -> Path:
    """add-gguf of the real SmolLM2 GGUF with the shipped tuned Modelfile (both engines)."""
    run = offgrid(
        "bundle", "add-gguf", bundle, "--name", TUNED, "--modelfile", TUNED_MODELFILE,
        "--gguf", bundled_model_path(), "--engine", "both",
    )  # fmt: skip
    assert run.code == 0, run.err
    return bundle


def add_plain_model(bundle: Path, name: str, system: str) -> None:
    """A second pinned model (same GGUF, another SYSTEM layer)."""
    modelfile = bundle.parent / f"{name.replace(':', '_')}.Modelfile"
    modelfile.write_text(f"FROM {bundled_model_path()}\nSYSTEM {system}\n")
    run = offgrid("bundle", "add-gguf", bundle, "--name", name, "--modelfile", modelfile)
    assert run.code == 0, run.err


def copy_bundle(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    return dest


def lock_json(bundle: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((bundle / "offgrid.lock.json").read_text())
    return loaded


def verify_store(lock: Path, store: Path, state: Path, *extra: str | Path) -> CliRun:
    return offgrid("models", "verify", "--lock", lock, "--store", store, "--cache-dir", state,
                   *extra)  # fmt: skip


def flip_byte(path: Path, offset: int = 4096) -> None:
    """Flip one bit in the middle of the file and put the old mtime back."""
    before = path.stat()
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))

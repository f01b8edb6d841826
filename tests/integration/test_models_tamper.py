"""Every tamper is detected and named: flipped byte, truncation, missing blob, extra blob,
unpinned model, swapped manifest, changed engine binary; the incremental cache hides neither
a change made with the mtime restored nor one vouched for by a forged cache entry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from auditor.models.cache import CACHE_FILE
from tests.integration.models_helpers import (
    add_plain_model,
    build_bundle,
    copy_bundle,
    flip_byte,
    lock_json,
    offgrid,
    verify_store,
)
from tests.standins.ollama_release_standin import build_release

pytestmark = pytest.mark.integration

TUNED_MANIFEST = "manifests/registry.ollama.ai/library/smollm2/135m-tuned"
PLAIN_MANIFEST = "manifests/registry.ollama.ai/library/smollm2/plain"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = build_bundle(tmp_path_factory.mktemp("pristine") / "bundle")
    add_plain_model(bundle, "smollm2:plain", "Answer in one line.")
    return bundle


@pytest.fixture
def bundle(pristine: Path, tmp_path: Path) -> Path:
    return copy_bundle(pristine, tmp_path / "bundle")


def _model_blob(bundle: Path) -> Path:
    lock = lock_json(bundle)
    digest = lock["models"][0]["layers"][0]["digest"]  # type: ignore[index]
    return bundle / "models/ollama/blobs" / digest.replace(":", "-")


def _blob_of(bundle: Path, media: str) -> Path:
    manifest = json.loads((bundle / "models/ollama" / TUNED_MANIFEST).read_bytes())
    layer = next(x for x in manifest["layers"] if x["mediaType"].endswith(media))
    return bundle / "models/ollama/blobs" / layer["digest"].replace(":", "-")


def _flip(bundle: Path) -> str:
    flip_byte(_model_blob(bundle))
    return f"digest-mismatch: blobs/{_model_blob(bundle).name}"


def _truncate(bundle: Path) -> str:
    blob = _model_blob(bundle)
    os.truncate(blob, blob.stat().st_size - 1)
    return f"size-mismatch: blobs/{blob.name}"


def _missing(bundle: Path) -> str:
    blob = _blob_of(bundle, "template")
    blob.unlink()
    return f"missing-blob: blobs/{blob.name}: not found"


def _extra(bundle: Path) -> str:
    junk = bundle / "models/ollama/blobs" / ("sha256-" + "e" * 64)
    junk.write_bytes(b"smuggled")
    return f"extra-blob: blobs/{junk.name}"


def _unpinned(bundle: Path) -> str:
    rogue = bundle / "models/ollama/manifests/registry.ollama.ai/library/rogue/latest"
    rogue.parent.mkdir(parents=True)
    shutil.copyfile(bundle / "models/ollama" / TUNED_MANIFEST, rogue)
    return "unpinned-model: manifests/registry.ollama.ai/library/rogue/latest"


def _swapped(bundle: Path) -> str:
    store = bundle / "models/ollama"
    tuned, plain = store / TUNED_MANIFEST, store / PLAIN_MANIFEST
    tuned_bytes, plain_bytes = tuned.read_bytes(), plain.read_bytes()
    tuned.write_bytes(plain_bytes)
    plain.write_bytes(tuned_bytes)
    return f"manifest-changed: {TUNED_MANIFEST}: "


TAMPERS: dict[str, Callable[[Path], str]] = {
    "flipped-byte": _flip,
    "truncation": _truncate,
    "missing-blob": _missing,
    "extra-blob": _extra,
    "unpinned-model": _unpinned,
    "swapped-manifest": _swapped,
}


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_store_tamper_is_detected_and_named(bundle: Path, tmp_path: Path, tamper: str) -> None:
    expected = TAMPERS[tamper](bundle)
    run = verify_store(bundle / "offgrid.lock.json", bundle / "models/ollama", tmp_path / "st")
    assert run.code == 1, run.out
    assert expected in run.out
    bundle_run = offgrid("bundle", "verify", bundle)
    assert bundle_run.code == 1
    assert expected in bundle_run.out


def test_swapped_manifest_names_the_other_model(bundle: Path, tmp_path: Path) -> None:
    _swapped(bundle)
    run = verify_store(bundle / "offgrid.lock.json", bundle / "models/ollama", tmp_path / "st")
    assert "swapped with the manifest of registry.ollama.ai/library/smollm2:plain" in run.out


def test_flipped_byte_in_a_plain_gguf_is_detected(bundle: Path, tmp_path: Path) -> None:
    gguf_dir = bundle / "models/gguf"
    (gguf,) = gguf_dir.iterdir()
    flip_byte(gguf)
    run = verify_store(bundle / "offgrid.lock.json", gguf_dir, tmp_path / "st")
    assert run.code == 1
    assert f"digest-mismatch: {gguf.name}" in run.out
    shutil.copyfile(gguf, gguf_dir / "renamed-model.bin")
    run = verify_store(bundle / "offgrid.lock.json", gguf_dir, tmp_path / "st")
    assert "unpinned-model: renamed-model.bin" in run.out


def test_changed_engine_binary_is_detected(bundle: Path, tmp_path: Path) -> None:
    release = build_release(tmp_path / "release", "0.17.1", "zst")
    added = offgrid("bundle", "add-engine", bundle, "--ollama-tarball", release.path,
                    "--version", "0.17.1")  # fmt: skip
    assert added.code == 0, added.err
    installed = tmp_path / "usr/local"  # unpacked as the engine role does
    installed.mkdir(parents=True)
    subprocess.run(["tar", "--zstd", "-xf", release.path, "-C", installed], check=True)
    binary = installed / "bin/ollama"
    lock, store = bundle / "offgrid.lock.json", bundle / "models/ollama"
    clean = verify_store(lock, store, tmp_path / "st", "--engine-binary", binary)
    assert clean.code == 0, clean.out
    assert "OK         engine ollama 0.17.1" in clean.out
    with binary.open("ab") as handle:
        handle.write(b"\n# implant\n")
    changed = verify_store(lock, store, tmp_path / "st", "--engine-binary", binary)
    assert changed.code == 1
    assert "FAILED     engine ollama 0.17.1" in changed.out
    assert f"{binary}: sha256 " in changed.out
    assert offgrid("bundle", "verify", bundle).code == 0  # the bundle itself is still intact


def _stats(run_out: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(run_out)
    return loaded


def test_incremental_cache_hides_no_change(bundle: Path, tmp_path: Path) -> None:
    lock, store, state = bundle / "offgrid.lock.json", bundle / "models/ollama", tmp_path / "st"
    time.sleep(1.1)  # the fresh copies must leave the racy window before they can be cached
    first = _stats(verify_store(lock, store, state, "--format", "json").out)
    assert first["mode"] == "full" and first["blobs_from_cache"] == 0
    second = _stats(verify_store(lock, store, state, "--format", "json").out)
    assert second["mode"] == "incremental"
    assert second["blobs_hashed"] == 0 and second["blobs_from_cache"] == first["blobs_hashed"]

    blob = _model_blob(bundle)
    old_mtime = blob.stat().st_mtime_ns
    flip_byte(blob)
    assert blob.stat().st_mtime_ns == old_mtime  # the attacker restored the mtime
    third = verify_store(lock, store, state, "--format", "json")
    assert third.code == 1
    stats = _stats(third.out)
    assert stats["mode"] == "incremental" and stats["blobs_hashed"] == 1
    assert any(
        f"digest-mismatch: blobs/{blob.name}" in p for m in stats["models"] for p in m["problems"]
    )  # type: ignore[union-attr,attr-defined]


def test_forged_cache_entry_is_not_trusted(bundle: Path, tmp_path: Path) -> None:
    lock, store, state = bundle / "offgrid.lock.json", bundle / "models/ollama", tmp_path / "st"
    time.sleep(1.1)
    assert verify_store(lock, store, state).code == 0
    blob = _model_blob(bundle)
    flip_byte(blob)
    cache_path = state / CACHE_FILE
    document = json.loads(cache_path.read_text())
    entry = document["entries"][str(blob)]
    st = blob.stat()
    entry.update(ino=st.st_ino, size=st.st_size, mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns)
    cache_path.write_text(json.dumps(document))  # stat matches now, the old digest stays
    run = verify_store(lock, store, state, "--format", "json")
    assert run.code == 1
    stats = _stats(run.out)
    assert stats["mode"] == "incremental" and stats["blobs_hashed"] >= 1

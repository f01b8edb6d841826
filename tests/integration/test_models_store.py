"""A store built by add-gguf from the real SmolLM2 GGUF has Ollama's layout and digests;
export round-trips it; verify passes on it (Ollama's manifests/ + blobs/ layout)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from auditor.embedded.llamacpp import bundled_model_path
from tests.integration.models_helpers import (
    TUNED_FULL,
    build_bundle,
    lock_json,
    offgrid,
    sha256sum,
    verify_store,
)

pytestmark = pytest.mark.integration

MANIFEST = "manifests/registry.ollama.ai/library/smollm2/135m-tuned"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bundle(tmp_path_factory.mktemp("models") / "bundle")


def test_layout_and_digests_match_facts_4(bundle: Path) -> None:
    store = bundle / "models/ollama"
    manifest_path = store / MANIFEST
    manifest = json.loads(manifest_path.read_bytes())
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert manifest["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.ollama.image.model",
        "application/vnd.ollama.image.template",
        "application/vnd.ollama.image.system",
        "application/vnd.ollama.image.params",
    ]
    model_layer = manifest["layers"][0]
    assert model_layer["digest"] == "sha256:" + sha256sum(bundled_model_path())
    assert model_layer["size"] == bundled_model_path().stat().st_size
    blobs = sorted(p.name for p in (store / "blobs").iterdir())
    descriptors = [manifest["config"], *manifest["layers"]]
    assert blobs == sorted(d["digest"].replace(":", "-") for d in descriptors)
    for descriptor in descriptors:
        blob = store / "blobs" / descriptor["digest"].replace(":", "-")
        assert "sha256:" + sha256sum(blob) == descriptor["digest"]
        assert blob.stat().st_size == descriptor["size"]


def test_config_and_params_are_what_ollama_writes(bundle: Path) -> None:
    store = bundle / "models/ollama"
    manifest = json.loads((store / MANIFEST).read_bytes())
    config = json.loads(
        (store / "blobs" / manifest["config"]["digest"].replace(":", "-")).read_bytes()
    )
    assert config == {
        "model_format": "gguf",
        "model_family": "llama",
        "model_families": ["llama"],
        "model_type": "134.52M",
        "file_type": "Q4_1",
        "architecture": "amd64",
        "os": "linux",
    }
    params_digest = manifest["layers"][3]["digest"].replace(":", "-")
    params = (store / "blobs" / params_digest).read_bytes()
    assert params == (
        b'{"num_ctx":8192,"num_gpu":99,"stop":["\\u003c|im_start|\\u003e",'
        b'"\\u003c|im_end|\\u003e"],"temperature":0.1}\n'
    )


def test_lock_pins_manifest_layers_and_source(bundle: Path) -> None:
    lock = lock_json(bundle)
    (model,) = lock["models"]  # type: ignore[misc]
    assert model["name"] == TUNED_FULL
    assert model["manifest"]["sha256"] == sha256sum(bundle / "models/ollama" / MANIFEST)
    assert model["source"]["sha256"] == sha256sum(bundled_model_path())
    assert model["source"]["parameters"]["num_ctx"] == 8192
    (gguf,) = lock["gguf"]  # type: ignore[misc]
    assert gguf["sha256"] == sha256sum(bundle / gguf["path"])


def test_verify_passes_on_the_built_store_and_bundle(bundle: Path, tmp_path: Path) -> None:
    run = verify_store(bundle / "offgrid.lock.json", bundle / "models/ollama", tmp_path, "--full")
    assert run.code == 0, run.out + run.err
    assert "OK         model " + TUNED_FULL in run.out
    assert "mode full" in run.out
    bundle_run = offgrid("bundle", "verify", bundle)
    assert bundle_run.code == 0, bundle_run.out
    assert "bundle matches its lock" in bundle_run.out


def test_export_round_trips(bundle: Path, tmp_path: Path) -> None:
    exported = tmp_path / "exported"
    run = offgrid("bundle", "export", exported, "--store", bundle / "models/ollama", "--all")
    assert run.code == 0, run.err
    for path in (bundle / "models/ollama").rglob("*"):
        if path.is_file():
            twin = exported / "models/ollama" / path.relative_to(bundle / "models/ollama")
            assert twin.read_bytes() == path.read_bytes(), path
    original = lock_json(bundle)["models"][0]  # type: ignore[index]
    copy = lock_json(exported)["models"][0]  # type: ignore[index]
    assert {k: v for k, v in copy.items()} == {k: v for k, v in original.items() if k != "source"}
    again = offgrid("bundle", "verify", exported)
    assert again.code == 0, again.out


def test_export_refuses_a_rotten_source_blob(bundle: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(bundle / "models/ollama", store)
    manifest = json.loads((store / MANIFEST).read_bytes())
    system = store / "blobs" / manifest["layers"][2]["digest"].replace(":", "-")
    system.write_bytes(system.read_bytes().upper())
    run = offgrid(
        "bundle", "export", tmp_path / "out", "--store", store, "--model", "smollm2:135m-tuned"
    )
    assert run.code == 2
    assert "does not match the pinned" in run.err
    assert not (tmp_path / "out/models/ollama" / MANIFEST).exists()


def test_rebuilding_a_model_leaves_no_orphan_blob(bundle: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(bundle, tmp_path / "bundle"))
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(f"FROM {bundled_model_path()}\nPARAMETER num_ctx 4096\n")
    run = offgrid(
        "bundle", "add-gguf", copy, "--name", "smollm2:135m-tuned", "--modelfile", modelfile
    )
    assert run.code == 0, run.err
    assert "removed 3 blob(s)" in run.err  # old template, system and params layers
    verified = offgrid("bundle", "verify", copy)
    assert verified.code == 0, verified.out

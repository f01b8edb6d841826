"""`add-gguf`: build an Ollama model from a GGUF file and a Modelfile, as `ollama create` does.

Layers in Ollama's order: the model (the GGUF's bytes, so its digest is the file's sha256,
`from` the file's base name), then TEMPLATE, SYSTEM, each LICENSE, the PARAMETERs as JSON,
the MESSAGEs as JSON; the config blob (`application/vnd.docker.container.image.v1+json`)
carries model_format, model_family(ies), model_type (parameter count as Ollama prints it) and
file_type (quantization) read from the GGUF header; the manifest is written last, so a
reader never finds a manifest whose blobs are missing. JSON blobs are byte-identical to Go's
encoder (gojson) so digests match what Ollama would compute.

Two differences from Ollama are deliberate and documented: Ollama ≥ 0.30 additionally
re-writes the GGUF through llama-quantize's COPY mode to validate it, which changes the
model layer's bytes (the loader reads either); and Ollama ≥ 0.32.7 no longer writes
`rootfs.diff_ids` into the config (ollama#17619) — `rootfs=True` adds it back for older
engines that expect the Docker image-config shape.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from auditor.errors import InputError
from auditor.fsutil import atomic_write_bytes
from auditor.models import gojson
from auditor.models.copying import copy_hashed
from auditor.models.gguf import GGUFInfo, read_info
from auditor.models.hashing import Progress, sha256_file
from auditor.models.lockfile import FilePin, LayerPin, ModelPin, ModelSource
from auditor.models.modelfile import Modelfile, parameters_as_json
from auditor.models.store import ModelName, blob_relpath

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_PREFIX = "application/vnd.ollama.image."


@dataclass(frozen=True)
class BuiltLayer:
    pin: LayerPin
    source_name: str | None = None  # the manifest's "from" field


def human_number(count: int) -> str:
    """Ollama's format.HumanNumber: 134515008 -> "134.52M"."""
    for limit, suffix, decimals in ((10**9, "B", 1), (10**6, "M", 2)):
        if count >= limit:
            number = count / limit
            return (
                f"{number:.0f}{suffix}" if number.is_integer() else f"{number:.{decimals}f}{suffix}"
            )
    if count >= 1000:
        return f"{count / 1000:.0f}K"
    return str(count)


def write_blob(store: Path, data: bytes, media_type: str) -> LayerPin:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = store / blob_relpath(digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not (path.is_file() and sha256_file(path).sha256 == digest[7:]):
        atomic_write_bytes(path, data, mode=0o644)
    return LayerPin(media_type, digest, len(data))


def config_document(
    info: GGUFInfo, modelfile: Modelfile, layers: Sequence[LayerPin], rootfs: bool
) -> gojson.OrderedFields:
    config = gojson.OrderedFields(
        model_format="gguf",
        model_family=info.architecture,
        model_families=[info.architecture],
        model_type=human_number(info.parameter_count),
        file_type=info.file_type,
    )
    for key in ("renderer", "parser", "requires"):
        if getattr(modelfile, key):
            config[key] = getattr(modelfile, key)
    config["architecture"] = "amd64"
    config["os"] = "linux"
    if rootfs:
        config["rootfs"] = gojson.OrderedFields(type="layers", diff_ids=[x.digest for x in layers])
    return config


def _descriptor(pin: LayerPin, source_name: str | None = None) -> gojson.OrderedFields:
    fields = gojson.OrderedFields(mediaType=pin.media_type, digest=pin.digest, size=pin.size)
    if source_name:
        fields["from"] = source_name
    return fields


def manifest_bytes(config: LayerPin, layers: Sequence[BuiltLayer]) -> bytes:
    return gojson.encode(
        gojson.OrderedFields(
            schemaVersion=2,
            mediaType=MANIFEST_MEDIA_TYPE,
            config=_descriptor(config),
            layers=[_descriptor(layer.pin, layer.source_name) for layer in layers],
        )
    )


def _text_layers(store: Path, modelfile: Modelfile) -> list[BuiltLayer]:
    layers = []
    if modelfile.template:
        layers.append(write_blob(store, modelfile.template.encode(), LAYER_PREFIX + "template"))
    if modelfile.system:
        layers.append(write_blob(store, modelfile.system.encode(), LAYER_PREFIX + "system"))
    for text in modelfile.licenses:
        if text:
            layers.append(write_blob(store, text.encode(), LAYER_PREFIX + "license"))
    if modelfile.parameters:
        params = gojson.encode(dict(modelfile.parameters))
        layers.append(write_blob(store, params, LAYER_PREFIX + "params"))
    if modelfile.messages:
        messages = [gojson.OrderedFields(role=r, content=c) for r, c in modelfile.messages]
        layers.append(write_blob(store, gojson.encode(messages), LAYER_PREFIX + "messages"))
    return [BuiltLayer(pin) for pin in layers]


def _check_buildable(modelfile: Modelfile, info: GGUFInfo, gguf: Path) -> None:
    if modelfile.adapters or modelfile.drafts:
        raise InputError("add-gguf builds single-file models: ADAPTER and DRAFT are not supported")
    if info.kind == "adapter":
        raise InputError(f"{gguf} is a LoRA adapter, not a model")


def add_gguf(
    store: Path,
    name: ModelName,
    gguf: Path,
    modelfile: Modelfile,
    *,
    rootfs: bool = False,
    progress: Progress | None = None,
) -> ModelPin:
    """Write the model's blobs and manifest into store and return its lock entry."""
    info = read_info(gguf)
    _check_buildable(modelfile, info, gguf)
    staged = copy_hashed(gguf, store / "blobs" / ".incoming-gguf", progress=progress)
    digest = f"sha256:{staged.sha256}"
    staged.path.replace(store / blob_relpath(digest))
    model = BuiltLayer(LayerPin(LAYER_PREFIX + "model", digest, staged.size), gguf.name)
    layers = [model, *_text_layers(store, modelfile)]
    pins = [layer.pin for layer in layers]
    config_data = gojson.encode(config_document(info, modelfile, pins, rootfs))
    config = write_blob(store, config_data, CONFIG_MEDIA_TYPE)
    manifest = manifest_bytes(config, layers)
    manifest_path = store / name.manifest_relpath
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(manifest_path, manifest, mode=0o644)
    return ModelPin(
        name=str(name),
        manifest=FilePin(
            name.manifest_relpath.as_posix(), hashlib.sha256(manifest).hexdigest(), len(manifest)
        ),
        config=config,
        layers=tuple(pins),
        source=ModelSource(
            gguf.name, staged.sha256 or "", staged.size, parameters_as_json(modelfile.parameters)
        ),
    )

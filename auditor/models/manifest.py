"""Read an Ollama manifest file into pins (config + layers), refusing malformed ones."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from auditor import safeio
from auditor.errors import InputError
from auditor.models.lockfile import FilePin, LayerPin
from auditor.models.store import check_digest

MANIFEST_LIMIT = 4 * 1024 * 1024  # an OCI manifest is a few KiB


@dataclass(frozen=True)
class Manifest:
    file: FilePin  # path relative to the store, sha256 and size of the file's bytes
    config: LayerPin
    layers: tuple[LayerPin, ...]


def _descriptor(raw: object, where: str) -> LayerPin:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: descriptor is not an object")
    media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
    if not isinstance(media_type, str) or not isinstance(digest, str):
        raise InputError(f"{where}: descriptor lacks mediaType or digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InputError(f"{where}: descriptor size is not a non-negative integer")
    return LayerPin(media_type, check_digest(digest), size)


def parse_manifest(data: bytes, relpath: str) -> Manifest:
    try:
        raw = safeio.parse_json(data, relpath)
    except InputError as exc:
        raise InputError(f"{relpath}: manifest is not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("schemaVersion") != 2:
        raise InputError(f"{relpath}: not a schemaVersion 2 manifest")
    layers = raw.get("layers")
    if not isinstance(layers, list) or not layers:
        raise InputError(f"{relpath}: manifest has no layers")
    return Manifest(
        file=FilePin(relpath, hashlib.sha256(data).hexdigest(), len(data)),
        config=_descriptor(raw.get("config"), f"{relpath} config"),
        layers=tuple(_descriptor(layer, f"{relpath} layer {i}") for i, layer in enumerate(layers)),
    )


def read_manifest(store: Path, relpath: str) -> Manifest:
    data = safeio.read_bytes(store / relpath, MANIFEST_LIMIT, what="cannot read manifest")
    return parse_manifest(data, relpath)

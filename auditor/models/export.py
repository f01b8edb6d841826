"""`export`: copy pinned models out of an existing Ollama store into a bundle.

Ollama has no export command (ollama#17115). Every blob is hashed while it is copied and
must match its manifest digest and size, so a blob that rotted in the source store is
refused instead of being carried across the air gap; the manifest is copied byte for byte
(its sha256 is the model's identity) and written after its blobs.
"""

from __future__ import annotations

from pathlib import Path

from auditor import safeio
from auditor.errors import InputError
from auditor.fsutil import atomic_write_bytes
from auditor.models.copying import copy_hashed
from auditor.models.hashing import Progress
from auditor.models.lockfile import ModelPin
from auditor.models.manifest import MANIFEST_LIMIT, parse_manifest
from auditor.models.store import ModelName, blob_relpath, iter_manifests, name_from_manifest_path


def installed_models(store: Path) -> list[ModelName]:
    return [name_from_manifest_path(store, path) for path in iter_manifests(store)]


def export_model(
    source: Path, dest: Path, name: ModelName, progress: Progress | None = None
) -> ModelPin:
    relpath = name.manifest_relpath.as_posix()
    if not (source / relpath).exists():
        raise InputError(f"model {name.short} is not in the store {source}")
    data = safeio.read_bytes(source / relpath, MANIFEST_LIMIT, what="cannot read")
    manifest = parse_manifest(data, relpath)
    for blob in (manifest.config, *manifest.layers):
        target = dest / blob_relpath(blob.digest)
        copied = copy_hashed(source / blob_relpath(blob.digest), target, blob.sha256, progress)
        if copied.size != blob.size:
            target.unlink()
            raise InputError(
                f"{name.short}: blob {blob.digest} has {copied.size} bytes, "
                f"the manifest says {blob.size}"
            )
    (dest / relpath).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dest / relpath, data, mode=0o644)
    return ModelPin(str(name), manifest.file, manifest.config, manifest.layers)

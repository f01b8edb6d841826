"""Verify a model store (Ollama layout or a GGUF directory) or a whole bundle against a lock.

For every pinned model: the manifest file exists and its sha256 is the pinned one; for the
config and every layer the blob exists, its size equals the pinned size and its sha256 the
pinned digest. Then whatever the lock does not know: manifests of unpinned models, blobs no
pinned model references, GGUF files nobody pinned. Every finding names its file.
"""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from auditor import safeio
from auditor.errors import InputError
from auditor.models.digests import DigestSource
from auditor.models.gguf import is_gguf
from auditor.models.hashing import FileHash
from auditor.models.lockfile import FilePin, GGUFPin, LayerPin, Lock, ModelPin
from auditor.models.manifest import MANIFEST_LIMIT
from auditor.models.store import (
    blob_relpath,
    digest_from_blob_name,
    iter_blob_files,
    iter_manifests,
    name_from_manifest_path,
)


class Kind(StrEnum):
    MISSING_MANIFEST = "missing-manifest"
    MANIFEST_CHANGED = "manifest-changed"
    MISSING = "missing-blob"
    SIZE = "size-mismatch"
    DIGEST = "digest-mismatch"
    UNREADABLE = "unreadable"
    UNPINNED_MODEL = "unpinned-model"
    EXTRA_BLOB = "extra-blob"
    EXTRA_FILE = "extra-file"


@dataclass(frozen=True)
class Problem:
    kind: Kind
    path: str  # the file concerned, relative to the verified root
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}: {self.detail}"


@dataclass(frozen=True)
class ItemStatus:
    name: str
    kind: str  # "model" | "gguf" | "engine" | "auditor" | "debs"
    problems: tuple[Problem, ...]

    @property
    def status(self) -> str:
        if not self.problems:
            return "ok"
        if all(p.kind is Kind.UNREADABLE for p in self.problems):
            return "unreadable"
        return "failed"


@dataclass(frozen=True)
class StoreReport:
    root: str
    layout: str  # "ollama" | "gguf" | "bundle"
    items: tuple[ItemStatus, ...]  # everything the lock pins that was looked for here
    unpinned: tuple[Problem, ...]  # what is here that the lock does not pin

    @property
    def ok(self) -> bool:
        return not self.unpinned and all(i.status == "ok" for i in self.items)


def _file_problems(
    pin_path: str,
    expected_sha: str,
    expected_size: int,
    result: FileHash | None,
    missing: Kind = Kind.MISSING,
) -> list[Problem]:
    if result is None or (result.sha256 is None and result.error == "No such file or directory"):
        return [Problem(missing, pin_path, "not found")]
    if result.sha256 is None:
        return [Problem(Kind.UNREADABLE, pin_path, result.error or "cannot be read")]
    if result.size != expected_size:
        return [
            Problem(
                Kind.SIZE,
                pin_path,
                f"{result.size} bytes, pinned {expected_size} "
                f"({'truncated' if result.size < expected_size else 'grown'})",
            )
        ]
    if result.sha256 != expected_sha:
        return [Problem(Kind.DIGEST, pin_path, f"sha256 {result.sha256}, pinned {expected_sha}")]
    return []


def _stat_size(path: Path) -> int | None:
    """The size of a regular file (None for anything else: only regular files are hashed)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _unhashed(path: Path) -> FileHash:
    """What a pinned path that is not hashed is: missing, not a regular file, or mis-sized."""
    try:
        st = path.stat()
    except OSError:
        return FileHash(path, None, 0, "No such file or directory")
    if not stat.S_ISREG(st.st_mode):
        return FileHash(path, None, 0, f"is {safeio.kind_of(st.st_mode)}, not a regular file")
    return FileHash(path, "", st.st_size)


def hash_pinned(
    root: Path, pins: Iterable[tuple[str, int]], source: DigestSource
) -> dict[str, FileHash]:
    """Hash pinned files whose size is right; a wrong size needs no hashing to be caught."""
    wanted = [rel for rel, size in pins if _stat_size(root / rel) == size]
    by_path = source.digests(root / rel for rel in wanted)
    out = {rel: by_path[root / rel] for rel in wanted}
    for rel, _size in pins:
        if rel not in out:
            out[rel] = _unhashed(root / rel)
    return out


def _blob_rel(layer: LayerPin) -> str:
    return blob_relpath(layer.digest).as_posix()


def _manifest_problems(store: Path, model: ModelPin, by_sha: dict[str, str]) -> list[Problem]:
    path = store / model.manifest.path
    if not path.exists():
        return [Problem(Kind.MISSING_MANIFEST, model.manifest.path, f"{model.name} not installed")]
    try:
        data = safeio.read_bytes(path, MANIFEST_LIMIT)
    except InputError as exc:
        return [Problem(Kind.UNREADABLE, model.manifest.path, str(exc))]
    actual = hashlib.sha256(data).hexdigest()
    if actual == model.manifest.sha256:
        return []
    other = by_sha.get(actual)
    how = f"swapped with the manifest of {other}" if other else "replaced or edited"
    return [
        Problem(
            Kind.MANIFEST_CHANGED,
            model.manifest.path,
            f"sha256 {actual}, pinned {model.manifest.sha256}: {how}",
        )
    ]


def verify_ollama_store(
    lock_models: Sequence[ModelPin], store: Path, source: DigestSource, label: str | None = None
) -> StoreReport:
    by_sha = {m.manifest.sha256: m.name for m in lock_models}
    pinned_blobs = {_blob_rel(b): b.size for m in lock_models for b in m.blobs}
    hashes = hash_pinned(store, pinned_blobs.items(), source)
    items = []
    for model in lock_models:
        problems = _manifest_problems(store, model, by_sha)
        for blob in model.blobs:
            rel = _blob_rel(blob)
            problems += _file_problems(rel, blob.sha256, blob.size, hashes.get(rel))
        items.append(ItemStatus(model.name, "model", tuple(problems)))
    return StoreReport(
        label or str(store),
        "ollama",
        tuple(items),
        tuple(_unpinned_in_store(store, lock_models, pinned_blobs)),
    )


def _unpinned_in_store(
    store: Path, models: Sequence[ModelPin], pinned_blobs: dict[str, int]
) -> Iterable[Problem]:
    pinned_manifests = {m.manifest.path for m in models}
    for path in iter_manifests(store):
        rel = path.relative_to(store).as_posix()
        if rel not in pinned_manifests:
            name = name_from_manifest_path(store, path)
            yield Problem(Kind.UNPINNED_MODEL, rel, f"{name} is not in the lock file")
    for path in iter_blob_files(store):
        rel = path.relative_to(store).as_posix()
        if rel not in pinned_blobs:
            what = "blob" if digest_from_blob_name(path.name) else "file (not a blob name)"
            yield Problem(Kind.EXTRA_BLOB, rel, f"{what} referenced by no pinned model")


def verify_gguf_dir(
    pins: Sequence[GGUFPin], directory: Path, source: DigestSource, label: str | None = None
) -> StoreReport:
    """GGUF files for the llamacpp engine, found in directory by their base names."""
    rel_of = {pin.path: Path(pin.path).name for pin in pins}
    hashes = hash_pinned(directory, [(rel_of[p.path], p.size) for p in pins], source)
    items = tuple(
        ItemStatus(
            pin.name,
            "gguf",
            tuple(
                _file_problems(rel_of[pin.path], pin.sha256, pin.size, hashes.get(rel_of[pin.path]))
            ),
        )
        for pin in pins
    )
    known = set(rel_of.values())
    unpinned = tuple(
        Problem(Kind.UNPINNED_MODEL, path.name, "GGUF model file not in the lock file")
        for path in _gguf_candidates(directory)
        if path.relative_to(directory).as_posix() not in known and path.name not in known
    )
    return StoreReport(label or str(directory), "gguf", items, unpinned)


def _gguf_candidates(directory: Path) -> list[Path]:
    """*.gguf files and any file carrying the GGUF magic (a renamed model is still a model)."""
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.iterdir() if p.is_file() and (p.suffix == ".gguf" or is_gguf(p))
    )


def verify_files(
    pins: Sequence[FilePin], root: Path, source: DigestSource, name: str, kind: str
) -> ItemStatus:
    hashes = hash_pinned(root, [(p.path, p.size) for p in pins], source)
    problems = [q for p in pins for q in _file_problems(p.path, p.sha256, p.size, hashes[p.path])]
    return ItemStatus(name, kind, tuple(problems))


BUNDLE_OLLAMA_STORE = "models/ollama"
BUNDLE_GGUF_DIR = "models/gguf"
BUNDLE_DEBS_DIR = "debs"
_BUNDLE_ARTIFACT_DIRS = ("engines", "auditor/wheelhouse", BUNDLE_DEBS_DIR, "vulns")


@dataclass(frozen=True)
class BundleReport:
    root: str
    items: tuple[ItemStatus, ...]  # engines and the auditor wheelhouse
    stores: tuple[StoreReport, ...]  # the Ollama store and the GGUF directory
    unpinned: tuple[Problem, ...]  # files under engines/ and auditor/ the lock does not pin

    @property
    def ok(self) -> bool:
        return (
            not self.unpinned
            and all(i.status == "ok" for i in self.items)
            and all(s.ok for s in self.stores)
        )


def _deb_files(lock: Lock) -> tuple[FilePin, ...]:
    if lock.debs is None:
        return ()
    return tuple(FilePin(p.path, p.sha256, p.size) for p in lock.debs.packages)


def verify_bundle(lock: Lock, root: Path, source: DigestSource) -> BundleReport:
    items = [
        verify_files(e.artifacts, root, source, f"{e.name} {e.version}", "engine")
        for e in lock.engines
    ]
    if lock.auditor:
        items.append(verify_files(lock.auditor, root, source, "offgrid auditor wheels", "auditor"))
    deb_files = _deb_files(lock)
    if deb_files:
        items.append(verify_files(deb_files, root, source, "Debian packages", "debs"))
    vuln_files = lock.vulns.files if lock.vulns else ()
    if vuln_files:
        items.append(verify_files(vuln_files, root, source, "vulnerability table", "vulns"))
    stores = (
        verify_ollama_store(lock.models, root / BUNDLE_OLLAMA_STORE, source, BUNDLE_OLLAMA_STORE),
        verify_gguf_dir(lock.gguf, root / BUNDLE_GGUF_DIR, source, BUNDLE_GGUF_DIR),
    )
    pinned = {a.path for e in lock.engines for a in e.artifacts} | {a.path for a in lock.auditor}
    pinned |= {d.path for d in deb_files} | {v.path for v in vuln_files}
    unpinned = tuple(
        Problem(Kind.EXTRA_FILE, rel, "not pinned in the lock file")
        for top in _BUNDLE_ARTIFACT_DIRS
        if (root / top).is_dir()
        for path in sorted((root / top).rglob("*"))
        if path.is_file()
        if (rel := path.relative_to(root).as_posix()) not in pinned
    )
    return BundleReport(str(root), tuple(items), stores, unpinned)

"""Ollama's on-disk model store: where a model name's manifest and a digest's blob live.

Layout (as Ollama writes it): `manifests/<host>/<namespace>/<model>/<tag>` and
`blobs/sha256-<64 hex>`; a bare name means `registry.ollama.ai/library/<name>:latest`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from auditor.errors import InputError

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_BLOB_FILE = re.compile(r"^sha256-[0-9a-f]{64}$")
# Ollama's own part rules: letters, digits, '_', '-', '.'; a part never starts with '.'
# or '-', which also keeps "..", "." and absolute paths out of the manifest path.
_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$")
_HOST = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}$")


@dataclass(frozen=True, order=True)
class ModelName:
    host: str
    namespace: str
    model: str
    tag: str

    @property
    def short(self) -> str:
        """`model:tag`, or the full name when host or namespace are not the defaults."""
        if (self.host, self.namespace) == (DEFAULT_HOST, DEFAULT_NAMESPACE):
            return f"{self.model}:{self.tag}"
        return str(self)

    def __str__(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def manifest_relpath(self) -> Path:
        return Path("manifests", self.host, self.namespace, self.model, self.tag)


class _Digested(Protocol):
    @property
    def digest(self) -> str: ...


class ModelPinLike(Protocol):
    """What pruning needs of a lock entry (the store module does not import the lock)."""

    @property
    def config(self) -> _Digested: ...

    @property
    def layers(self) -> Sequence[_Digested]: ...


def parse_name(text: str) -> ModelName:
    """`[host/][namespace/]model[:tag]` with Ollama's defaults; InputError if invalid."""
    rest, tag = text, DEFAULT_TAG
    last = text.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = text.rsplit(":", 1)
    parts = rest.split("/")
    if len(parts) == 1:
        host, namespace, model = DEFAULT_HOST, DEFAULT_NAMESPACE, parts[0]
    elif len(parts) == 2:
        host, (namespace, model) = DEFAULT_HOST, parts
    elif len(parts) == 3:
        host, namespace, model = parts
    else:
        raise InputError(f"invalid model name {text!r}: too many '/' parts")
    name = ModelName(host, namespace, model, tag)
    bad = [p for p in (namespace, model, tag) if not _PART.match(p)]
    if bad or not _HOST.match(host):
        raise InputError(f"invalid model name {text!r}")
    return name


def name_from_manifest_path(store: Path, manifest: Path) -> ModelName:
    relative = manifest.relative_to(store / "manifests").parts
    if len(relative) != 4:
        raise InputError(f"not a manifest path: {manifest}")
    return ModelName(*relative)


def check_digest(digest: str) -> str:
    if not _DIGEST.match(digest):
        raise InputError(f"invalid digest {digest!r}: expected sha256:<64 lowercase hex>")
    return digest


def blob_relpath(digest: str) -> Path:
    """`blobs/sha256-<hex>`: Ollama swaps the digest's ':' for '-' in file names."""
    return Path("blobs", check_digest(digest).replace(":", "-", 1))


def digest_from_blob_name(name: str) -> str | None:
    return name.replace("-", ":", 1) if _BLOB_FILE.match(name) else None


def iter_manifests(store: Path) -> Iterator[Path]:
    """Every file four levels under manifests/ (host/namespace/model/tag)."""
    root = store / "manifests"
    if not root.is_dir():
        return
    for path in sorted(root.glob("*/*/*/*")):
        if path.is_file() or path.is_symlink():
            yield path


def iter_blob_files(store: Path) -> Iterator[Path]:
    """Every entry in blobs/, including partial downloads and stray files."""
    root = store / "blobs"
    if not root.is_dir():
        return
    yield from sorted(p for p in root.iterdir() if not p.is_dir())


def is_ollama_store(path: Path) -> bool:
    return (path / "manifests").is_dir() or (path / "blobs").is_dir()


def prune_unreferenced(store: Path, models: Sequence[ModelPinLike]) -> list[Path]:
    """Delete files in blobs/ that none of the models references; return what was removed."""
    wanted = {blob_relpath(b.digest).name for m in models for b in (m.config, *m.layers)}
    removed = []
    for path in iter_blob_files(store):
        if path.name not in wanted:
            path.unlink()
            removed.append(path)
    return removed

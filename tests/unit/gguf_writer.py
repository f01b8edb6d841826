"""A minimal GGUF writer for tests: header, string/uint32 metadata and tensor infos."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


Tensors = Sequence[tuple[str, tuple[int, ...]]]


def gguf_bytes(metadata: dict[str, str | int], tensors: Tensors = ()) -> bytes:
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    for key, value in metadata.items():
        out += _string(key)
        if isinstance(value, str):
            out += struct.pack("<I", 8) + _string(value)
        else:
            out += struct.pack("<II", 4, value)
    for name, dims in tensors:
        out += _string(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", 0, 0)
    return out


def write_gguf(path: Path, metadata: dict[str, str | int], tensors: Tensors = ()) -> Path:
    path.write_bytes(gguf_bytes(metadata, tensors))
    return path

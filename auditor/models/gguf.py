"""Read a GGUF file's header: magic, version, metadata and tensor shapes.

`ollama create` derives the model config (family, quantization level, parameter size)
from these; offgrid also refuses a file that is not GGUF before it is pinned.
The parser bounds every length it reads so a hostile header cannot make it allocate
gigabytes (GGUF parsing bugs are a recurring Ollama CVE class: CVE-2025-0312, CVE-2026-7482).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from auditor.errors import InputError

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
_MAX_STRING = 64 * 1024 * 1024
_MAX_COUNT = 1 << 32
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
# Keys whose values are kept; everything else (token tables) is skipped while reading.
_KEPT = frozenset(
    [
        "general.architecture",
        "general.type",
        "general.file_type",
        "general.name",
        "general.alignment",
        "tokenizer.chat_template",
    ]
)

# llama_ftype -> the name Ollama shows as "quantization level" (fs/ggml FileType.String).
_FILE_TYPE_TABLE = (
    "F32 F16 Q4_0 Q4_1 - - - Q8_0 Q5_0 Q5_1 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M "
    "Q5_K_S Q5_K_M Q6_K IQ2_XXS IQ2_XS Q2_K_S IQ3_XS IQ3_XXS IQ1_S IQ4_NL IQ3_S "
    "IQ3_M IQ2_S IQ2_M IQ4_XS IQ1_M BF16 - - - TQ1_0 TQ2_0 MXFP4_MOE NVFP4 Q1_0"
)
FILE_TYPES = tuple(_FILE_TYPE_TABLE.split())


@dataclass(frozen=True)
class GGUFInfo:
    version: int
    tensor_count: int
    parameter_count: int
    metadata: Mapping[str, object]

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def block_count(self) -> int | None:
        """The architecture's repeating layers (`<arch>.block_count`); None: not stated."""
        value = self.metadata.get(f"{self.architecture}.block_count")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def kind(self) -> str:
        return str(self.metadata.get("general.type", "unknown"))

    @property
    def file_type(self) -> str:
        raw = self.metadata.get("general.file_type")
        # Ollama treats 0 (and anything it does not know) as "unknown", so does this.
        if not isinstance(raw, int) or raw <= 0 or raw >= len(FILE_TYPES):
            return "unknown"
        return FILE_TYPES[raw] if FILE_TYPES[raw] != "-" else "unknown"


class _Reader:
    def __init__(self, handle: BinaryIO, path: Path) -> None:
        self._handle, self._path = handle, path

    def exact(self, size: int) -> bytes:
        data = self._handle.read(size)
        if len(data) != size:
            raise InputError(f"{self._path}: truncated GGUF header")
        return data

    def scalar(self, fmt: str) -> object:
        return struct.unpack(fmt, self.exact(struct.calcsize(fmt)))[0]

    def u32(self) -> int:
        value: int = struct.unpack("<I", self.exact(4))[0]
        return value

    def u64(self) -> int:
        value: int = struct.unpack("<Q", self.exact(8))[0]
        return value

    def count(self, what: str) -> int:
        value = self.u64()
        if value > _MAX_COUNT:
            raise InputError(f"{self._path}: implausible GGUF {what} count {value}")
        return value

    def string(self, keep: bool = True) -> str:
        size = self.u64()
        if size > _MAX_STRING:
            raise InputError(f"{self._path}: implausible GGUF string length {size}")
        if not keep:
            self._handle.seek(size, 1)
            return ""
        return self.exact(size).decode("utf-8", errors="replace")

    def value(self, kind: int, keep: bool) -> object:
        if kind in _SCALARS:
            return self.scalar(_SCALARS[kind])
        if kind == _STRING:
            return self.string(keep)
        if kind == _ARRAY:
            item_kind, count = self.u32(), self.count("array")
            if item_kind in _SCALARS:  # fixed-size items: skip them in one seek
                self._handle.seek(struct.calcsize(_SCALARS[item_kind]) * count, 1)
            else:
                for _ in range(count):
                    self.value(item_kind, keep=False)
            return None
        raise InputError(f"{self._path}: unknown GGUF value type {kind}")


def read_info(path: Path) -> GGUFInfo:
    """Parse the header; InputError if the file is not a GGUF offgrid understands."""
    try:
        with path.open("rb") as handle:
            return _parse(_Reader(handle, path), path)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def is_gguf(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == MAGIC
    except OSError:
        return False


def _parse(reader: _Reader, path: Path) -> GGUFInfo:
    if reader.exact(4) != MAGIC:
        raise InputError(f"{path}: not a GGUF file (bad magic)")
    version = reader.u32()
    if version not in SUPPORTED_VERSIONS:
        raise InputError(f"{path}: unsupported GGUF version {version}")
    tensor_count, kv_count = reader.count("tensor"), reader.count("metadata")
    metadata: dict[str, object] = {}
    for _ in range(kv_count):
        key = reader.string()
        kept = key in _KEPT or key.endswith(".block_count")
        value = reader.value(reader.u32(), keep=kept)
        if kept:
            metadata[key] = value
    parameters = 0
    for _ in range(tensor_count):
        reader.string(keep=False)
        dims = reader.u32()
        if dims > 8:
            raise InputError(f"{path}: implausible tensor rank {dims}")
        parameters += math.prod(reader.u64() for _ in range(dims))
        reader.u32()  # tensor type
        reader.u64()  # data offset
    return GGUFInfo(version, tensor_count, parameters, metadata)

"""The lock file (`offgrid.lock.json`): every artifact of a bundle pinned by size and sha256.

Format version 1, JSON Schema in auditor/data/lock.schema.json. Sections:
- `engines`: per engine the bundle artifacts (Ollama tarball, llama.cpp wheelhouse) and the
  binaries they install (`bin/ollama`, `llama_cpp/lib/*.so`), which OG-INT-01 checks;
- `models`: Ollama models: manifest path and sha256, config and every layer (media type,
  digest, size) and, when built from a GGUF, that file's sha256 and the Modelfile parameters;
- `gguf`: plain GGUF files for the llamacpp engine;
- `auditor`: the auditor's wheels;
- `debs` (optional): Debian packages the roles install on the target offline, with the
  release and architecture they were resolved for;
- `vulns` (optional): the known-vulnerability table (OSV JSON entries under vulns/), with the
  day it was checked and where it came from.
An engine pin built by the recipe (`offgrid bundle build-engine`) carries a `build` record:
variant, CMake flags, the CPU flags the build needs (declared and found in its libraries) and,
for CUDA builds, the toolkit version and architectures.
Loading validates against the schema and refuses unknown versions with an InputError.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from auditor import __version__, safeio
from auditor.errors import InputError
from auditor.fsutil import atomic_write_text

LOCK_VERSION = 1
LOCK_FILE = "offgrid.lock.json"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class FilePin:
    path: str  # POSIX, relative to the bundle root (or the engine's install root)
    sha256: str
    size: int


@dataclass(frozen=True)
class CudaBuild:
    version: str  # CUDA toolkit that compiled it; the driver must support at least this
    architectures: tuple[str, ...]  # compute capabilities compiled for, e.g. ("80", "86")


@dataclass(frozen=True)
class EngineBuild:
    """How an engine build was made and what it needs from the machine that runs it."""

    variant: str  # the recipe's variant, e.g. cpu-x86-64-v3
    cpu_baseline: tuple[str, ...]  # /proc/cpuinfo flags a CPU must advertise to run it
    cmake_args: tuple[str, ...]
    compiler: str
    python_tag: str  # cp311: the interpreter the wheels are for
    cuda: CudaBuild | None = None


@dataclass(frozen=True)
class EnginePin:
    name: str  # "ollama" | "llamacpp"
    version: str
    kind: str  # "tarball" | "wheelhouse"
    artifacts: tuple[FilePin, ...]
    binaries: tuple[FilePin, ...]
    build: EngineBuild | None = None  # None: not built by the recipe (a release tarball)


@dataclass(frozen=True)
class DebPin:
    name: str
    version: str
    architecture: str
    path: str  # relative to the bundle root: debs/<file>.deb
    sha256: str
    size: int


@dataclass(frozen=True)
class DebSet:
    """Debian packages a role installs on the target offline: a dependency closure."""

    release: str  # VERSION_CODENAME they were resolved for, e.g. bookworm
    architecture: str  # dpkg architecture, e.g. amd64
    requested: tuple[str, ...]
    packages: tuple[DebPin, ...]


@dataclass(frozen=True)
class VulnsPin:
    """The bundle's known-vulnerability table: OSV entries, the day checked, their source."""

    date: str  # YYYY-MM-DD
    source: str
    files: tuple[FilePin, ...]  # vulns/<id>.json


@dataclass(frozen=True)
class LayerPin:
    media_type: str
    digest: str  # sha256:<hex>
    size: int

    @property
    def sha256(self) -> str:
        return self.digest.removeprefix("sha256:")


@dataclass(frozen=True)
class ModelSource:
    file: str
    sha256: str
    size: int
    parameters: Mapping[str, object]


@dataclass(frozen=True)
class ModelPin:
    name: str  # host/namespace/model:tag
    manifest: FilePin  # path relative to the store root: manifests/<host>/<ns>/<model>/<tag>
    config: LayerPin
    layers: tuple[LayerPin, ...]
    source: ModelSource | None = None

    @property
    def blobs(self) -> tuple[LayerPin, ...]:
        return (self.config, *self.layers)


@dataclass(frozen=True)
class GGUFPin:
    name: str
    path: str  # relative to the bundle root: models/gguf/<file>.gguf
    sha256: str
    size: int


@dataclass(frozen=True)
class Lock:
    engines: tuple[EnginePin, ...] = ()
    models: tuple[ModelPin, ...] = ()
    gguf: tuple[GGUFPin, ...] = ()
    auditor: tuple[FilePin, ...] = ()
    debs: DebSet | None = None
    vulns: VulnsPin | None = None
    generator: str = f"offgrid {__version__}"
    updated_at: str = field(default_factory=_now)

    def engine(self, name: str) -> EnginePin | None:
        return next((e for e in self.engines if e.name == name), None)

    def model(self, name: str) -> ModelPin | None:
        return next((m for m in self.models if m.name == name), None)

    def with_engine(self, pin: EnginePin) -> Lock:
        kept = tuple(e for e in self.engines if e.name != pin.name)
        return dataclasses.replace(self, engines=(*kept, pin), updated_at=_now())

    def with_model(self, pin: ModelPin) -> Lock:
        kept = tuple(m for m in self.models if m.name != pin.name)
        models = tuple(sorted((*kept, pin), key=lambda m: m.name))
        return dataclasses.replace(self, models=models, updated_at=_now())

    def with_gguf(self, pin: GGUFPin) -> Lock:
        kept = tuple(g for g in self.gguf if g.path != pin.path)
        gguf = tuple(sorted((*kept, pin), key=lambda g: g.path))
        return dataclasses.replace(self, gguf=gguf, updated_at=_now())

    def with_auditor(self, wheels: tuple[FilePin, ...]) -> Lock:
        return dataclasses.replace(self, auditor=wheels, updated_at=_now())

    def with_debs(self, debs: DebSet) -> Lock:
        return dataclasses.replace(self, debs=debs, updated_at=_now())

    def with_vulns(self, vulns: VulnsPin) -> Lock:
        return dataclasses.replace(self, vulns=vulns, updated_at=_now())


@cache
def schema() -> dict[str, Any]:
    text = resources.files("auditor.data").joinpath("lock.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _file(raw: Mapping[str, Any]) -> FilePin:
    return FilePin(raw["path"], raw["sha256"], raw["size"])


def _layer(raw: Mapping[str, Any]) -> LayerPin:
    return LayerPin(raw["mediaType"], raw["digest"], raw["size"])


def _model(raw: Mapping[str, Any]) -> ModelPin:
    source = raw.get("source")
    return ModelPin(
        name=raw["name"],
        manifest=_file(raw["manifest"]),
        config=_layer(raw["config"]),
        layers=tuple(_layer(layer) for layer in raw["layers"]),
        source=ModelSource(source["file"], source["sha256"], source["size"], source["parameters"])
        if source
        else None,
    )


def _build(raw: Mapping[str, Any] | None) -> EngineBuild | None:
    if raw is None:
        return None
    cuda = raw.get("cuda")
    return EngineBuild(
        variant=raw["variant"],
        cpu_baseline=tuple(raw["cpu_baseline"]),
        cmake_args=tuple(raw["cmake_args"]),
        compiler=raw["compiler"],
        python_tag=raw["python_tag"],
        cuda=CudaBuild(cuda["version"], tuple(cuda["architectures"])) if cuda else None,
    )


def _engine(raw: Mapping[str, Any]) -> EnginePin:
    return EnginePin(
        raw["name"],
        raw["version"],
        raw["kind"],
        tuple(_file(a) for a in raw["artifacts"]),
        tuple(_file(b) for b in raw["binaries"]),
        _build(raw.get("build")),
    )


def _debs(raw: Mapping[str, Any] | None) -> DebSet | None:
    if raw is None:
        return None
    packages = tuple(
        DebPin(p["name"], p["version"], p["architecture"], p["path"], p["sha256"], p["size"])
        for p in raw["packages"]
    )
    return DebSet(raw["release"], raw["architecture"], tuple(raw["requested"]), packages)


def _vulns(raw: Mapping[str, Any] | None) -> VulnsPin | None:
    if raw is None:
        return None
    return VulnsPin(raw["date"], raw["source"], tuple(_file(f) for f in raw["files"]))


def from_dict(raw: object, origin: str = "lock file") -> Lock:
    """Validate against the schema and build the Lock; InputError names the first problem."""
    if isinstance(raw, dict) and raw.get("lock_version") not in (LOCK_VERSION, None):
        raise InputError(
            f"{origin}: lock_version {raw.get('lock_version')!r} is not supported "
            f"(this offgrid reads version {LOCK_VERSION})"
        )
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema()).iter_errors(raw)
    )
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        raise InputError(f"{origin}: invalid lock file at {where}: {error.message}")
    assert isinstance(raw, dict)
    return Lock(
        engines=tuple(_engine(e) for e in raw["engines"]),
        models=tuple(_model(m) for m in raw["models"]),
        gguf=tuple(GGUFPin(g["name"], g["path"], g["sha256"], g["size"]) for g in raw["gguf"]),
        auditor=tuple(_file(a) for a in raw["auditor"]),
        debs=_debs(raw.get("debs")),
        vulns=_vulns(raw.get("vulns")),
        generator=raw["generator"],
        updated_at=raw["updated_at"],
    )


def load(path: Path) -> Lock:
    if not safeio.present(path):
        raise InputError(f"lock file not found: {path}")
    data = safeio.read_bytes(path, what="cannot read lock file")
    try:
        raw = safeio.parse_json(data, str(path))
    except InputError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        raise InputError(f"{path}: not valid JSON ({reason})") from None
    return from_dict(raw, str(path))


def load_or_new(path: Path) -> Lock:
    return load(path) if path.exists() else Lock()


def _layer_dict(layer: LayerPin) -> dict[str, object]:
    return {"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}


def _file_dict(pin: FilePin) -> dict[str, object]:
    return {"path": pin.path, "sha256": pin.sha256, "size": pin.size}


def _build_dict(build: EngineBuild) -> dict[str, object]:
    cuda = build.cuda
    return {
        "variant": build.variant,
        "cpu_baseline": list(build.cpu_baseline),
        "cmake_args": list(build.cmake_args),
        "compiler": build.compiler,
        "python_tag": build.python_tag,
        "cuda": None
        if cuda is None
        else {"version": cuda.version, "architectures": list(cuda.architectures)},
    }


def _engine_dict(engine: EnginePin) -> dict[str, object]:
    out: dict[str, object] = {
        "name": engine.name,
        "version": engine.version,
        "kind": engine.kind,
        "artifacts": [_file_dict(a) for a in engine.artifacts],
        "binaries": [_file_dict(b) for b in engine.binaries],
    }
    if engine.build is not None:
        out["build"] = _build_dict(engine.build)
    return out


def _debs_dict(debs: DebSet) -> dict[str, object]:
    return {
        "release": debs.release,
        "architecture": debs.architecture,
        "requested": list(debs.requested),
        "packages": [
            {
                "name": p.name,
                "version": p.version,
                "architecture": p.architecture,
                "path": p.path,
                "sha256": p.sha256,
                "size": p.size,
            }
            for p in debs.packages
        ],
    }


def _model_dict(model: ModelPin) -> dict[str, object]:
    out: dict[str, object] = {
        "name": model.name,
        "manifest": _file_dict(model.manifest),
        "config": _layer_dict(model.config),
        "layers": [_layer_dict(layer) for layer in model.layers],
    }
    if model.source is not None:
        source = model.source
        out["source"] = {
            "file": source.file,
            "sha256": source.sha256,
            "size": source.size,
            "parameters": dict(source.parameters),
        }
    return out


def to_dict(lock: Lock) -> dict[str, object]:
    """Plain JSON types only (lists, dicts), ready for json.dumps or schema validation."""
    out: dict[str, object] = {
        "lock_version": LOCK_VERSION,
        "generator": lock.generator,
        "updated_at": lock.updated_at,
        "engines": [_engine_dict(e) for e in lock.engines],
        "models": [_model_dict(m) for m in lock.models],
        "gguf": [
            {"name": g.name, "path": g.path, "sha256": g.sha256, "size": g.size} for g in lock.gguf
        ],
        "auditor": [_file_dict(a) for a in lock.auditor],
    }
    if lock.debs is not None:
        out["debs"] = _debs_dict(lock.debs)
    if lock.vulns is not None:
        vulns = lock.vulns
        out["vulns"] = {
            "date": vulns.date,
            "source": vulns.source,
            "files": [_file_dict(f) for f in vulns.files],
        }
    return out


def dumps(lock: Lock) -> str:
    return json.dumps(to_dict(lock), indent=2, ensure_ascii=False) + "\n"


def save(lock: Lock, path: Path) -> None:
    """Validate what is about to be written, then write it atomically."""
    from_dict(json.loads(dumps(lock)), str(path))
    atomic_write_text(path, dumps(lock), mode=0o644)

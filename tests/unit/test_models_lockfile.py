"""The lock file: schema, round trip, and clear errors for malformed or invalid files."""

import json
from pathlib import Path

import jsonschema
import pytest

from auditor.errors import InputError
from auditor.models import lockfile
from auditor.models.lockfile import EnginePin, FilePin, GGUFPin, LayerPin, ModelPin, ModelSource

SHA = "0" * 64


def sample() -> lockfile.Lock:
    layer = LayerPin("application/vnd.ollama.image.model", f"sha256:{SHA}", 10)
    config = LayerPin("application/vnd.docker.container.image.v1+json", f"sha256:{'1' * 64}", 5)
    model = ModelPin(
        "registry.ollama.ai/library/m:t",
        FilePin("manifests/registry.ollama.ai/library/m/t", "2" * 64, 300),
        config,
        (layer,),
        ModelSource("m.gguf", SHA, 10, {"num_ctx": 8192, "temperature": 0.1}),
    )
    engine = EnginePin(
        "ollama", "0.33.0", "tarball",
        (FilePin("engines/ollama/0.33.0/ollama-linux-amd64.tar.zst", SHA, 1),),
        (FilePin("bin/ollama", SHA, 1),),
    )  # fmt: skip
    return (
        lockfile.Lock()
        .with_engine(engine)
        .with_model(model)
        .with_gguf(GGUFPin("m:t", "models/gguf/m.gguf", SHA, 10))
        .with_auditor((FilePin("auditor/wheelhouse/offgrid-0.1.0-py3-none-any.whl", SHA, 3),))
    )


def test_round_trip_through_file(tmp_path: Path) -> None:
    path = tmp_path / lockfile.LOCK_FILE
    lockfile.save(sample(), path)
    loaded = lockfile.load(path)
    assert loaded == sample().__class__(**{**loaded.__dict__})
    assert lockfile.to_dict(loaded) == lockfile.to_dict(lockfile.load(path))
    assert loaded.model("registry.ollama.ai/library/m:t") is not None
    assert loaded.engine("ollama") is not None and loaded.engine("llamacpp") is None


def test_written_file_validates_against_the_shipped_schema(tmp_path: Path) -> None:
    path = tmp_path / lockfile.LOCK_FILE
    lockfile.save(sample(), path)
    jsonschema.Draft202012Validator(lockfile.schema()).validate(json.loads(path.read_text()))


def test_with_model_replaces_by_name() -> None:
    lock = sample()
    model = lock.models[0]
    updated = lock.with_model(ModelPin(model.name, model.manifest, model.config, model.layers))
    assert len(updated.models) == 1 and updated.models[0].source is None


def _mutated(change: str) -> dict[str, object]:
    raw = lockfile.to_dict(sample())
    if change == "version":
        raw["lock_version"] = 99
    elif change == "traversal":
        raw["gguf"][0]["path"] = "../../etc/shadow"  # type: ignore[index]
    elif change == "absolute":
        raw["auditor"][0]["path"] = "/etc/shadow"  # type: ignore[index]
    elif change == "digest":
        raw["models"][0]["layers"][0]["digest"] = "md5:abc"  # type: ignore[index]
    elif change == "size":
        raw["gguf"][0]["size"] = -1  # type: ignore[index]
    elif change == "unknown-key":
        raw["surprise"] = True
    elif change == "engine-name":
        raw["engines"][0]["name"] = "vllm"  # type: ignore[index]
    return raw


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("version", "lock_version 99 is not supported"),
        ("traversal", "gguf/0/path"),
        ("absolute", "auditor/0/path"),
        ("digest", "models/0/layers/0/digest"),
        ("size", "gguf/0/size"),
        ("unknown-key", "surprise"),
        ("engine-name", "engines/0/name"),
    ],
)
def test_invalid_locks_name_the_problem(change: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        lockfile.from_dict(_mutated(change))


def test_malformed_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        lockfile.load(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        lockfile.load(bad)
    bad.write_text("[]")
    with pytest.raises(InputError, match="invalid lock file"):
        lockfile.load(bad)


def _with_build_and_debs() -> lockfile.Lock:
    build = lockfile.EngineBuild(
        "cuda",
        ("avx", "avx2", "fma"),
        ("-DGGML_NATIVE=OFF", "-DGGML_CUDA=ON"),
        "gcc 12",
        "cp311",
        lockfile.CudaBuild("12.4", ("80", "90")),
    )
    wheel = FilePin("engines/llamacpp/wheelhouse/llama_cpp_python-0.3.36-cp311.whl", SHA, 9)
    engine = EnginePin(
        "llamacpp",
        "0.3.36",
        "wheelhouse",
        (wheel,),
        (FilePin("llama_cpp/lib/l.so", SHA, 1),),
        build,
    )
    deb = lockfile.DebPin("zstd", "1.5.4+dfsg2-5", "amd64", "debs/zstd_1.5.4_amd64.deb", SHA, 7)
    debs = lockfile.DebSet("bookworm", "amd64", ("zstd",), (deb,))
    return sample().with_engine(engine).with_debs(debs)


def test_build_record_and_debs_round_trip(tmp_path: Path) -> None:
    path = tmp_path / lockfile.LOCK_FILE
    lock = _with_build_and_debs()
    lockfile.save(lock, path)
    loaded = lockfile.load(path)
    engine = loaded.engine("llamacpp")
    assert engine is not None and engine.build is not None
    assert engine.build.cuda == lockfile.CudaBuild("12.4", ("80", "90"))
    assert engine.build.cpu_baseline == ("avx", "avx2", "fma")
    assert loaded.debs == lock.debs
    ollama = loaded.engine("ollama")
    assert ollama is not None and ollama.build is None
    assert "build" not in json.loads(path.read_text())["engines"][0]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda raw: raw["engines"][1]["build"].update(cpu_baseline=["AVX 2"]), "cpu_baseline"),
        (lambda raw: raw["engines"][1]["build"]["cuda"].update(version="twelve"), "cuda"),
        (lambda raw: raw["debs"]["packages"][0].update(path="/etc/passwd"), "debs/packages/0"),
        (lambda raw: raw["debs"].update(packages=[]), "debs/packages"),
    ],
)
def test_invalid_build_and_debs_are_named(change: object, where: str) -> None:
    raw = lockfile.to_dict(_with_build_and_debs())
    assert callable(change)
    change(raw)
    with pytest.raises(InputError, match=where):
        lockfile.from_dict(raw)

"""`offgrid bundle build-engine`: the recipe's engine and its dependencies as a pinned
wheelhouse, with the build record the roles check a target's CPU against."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.embedded.llamacpp import RunningEngine
from auditor.enginebuild import recipe
from auditor.enginebuild.cache import default_cache_root
from auditor.enginebuild.install import installed_build
from tests.integration.models_helpers import offgrid, sha256sum

pytestmark = pytest.mark.integration


def test_build_engine_pins_the_recipes_wheelhouse_with_its_build_record(tmp_path: Path) -> None:
    installed = installed_build(default_cache_root())
    assert installed is not None, "make setup installs the recipe's engine"
    bundle = tmp_path / "bundle"
    run = offgrid("bundle", "build-engine", bundle)
    assert run.code == 0, run.err
    assert "needs CPU flags avx, avx2, bmi2, f16c, fma, sse4_2" in run.out
    engine = json.loads((bundle / "offgrid.lock.json").read_text())["engines"][0]
    assert engine["name"] == "llamacpp" and engine["version"] == recipe.VERSION
    build = engine["build"]
    assert build["variant"] == recipe.DEFAULT_VARIANT
    assert build["cpu_baseline"] == ["avx", "avx2", "bmi2", "f16c", "fma", "sse4_2"]
    assert "-DGGML_NATIVE=OFF" in build["cmake_args"] and build["cuda"] is None
    wheels = {Path(a["path"]).name: a for a in engine["artifacts"]}
    assert installed.wheel.name in wheels  # the very wheel make setup installed
    assert sha256sum(installed.wheel) == wheels[installed.wheel.name]["sha256"]
    assert any(name.startswith(("fastapi-", "uvicorn-")) for name in wheels)
    assert any(b["path"].startswith("llama_cpp/lib/libggml-cpu") for b in engine["binaries"])
    assert offgrid("bundle", "verify", bundle).code == 0


def test_unknown_variant_is_a_usage_error(tmp_path: Path) -> None:
    run = offgrid("bundle", "build-engine", tmp_path / "b", "--variant", "native")
    assert run.code == 2
    assert len(run.err.strip().splitlines()) == 1


def test_the_report_says_what_build_the_engine_runs_and_whether_this_cpu_has_it(
    tmp_path: Path, llama_engine: RunningEngine
) -> None:
    bundle = tmp_path / "bundle"
    assert offgrid("bundle", "build-engine", bundle).code == 0
    lock = bundle / "offgrid.lock.json"
    run = offgrid(
        "models", "verify", "--lock", lock, "--engine-pid", str(llama_engine.pid),
        "--store", tmp_path, "--format", "json",
    )  # fmt: skip
    engine = json.loads(run.out)["engine"]
    assert engine["status"] == "ok", engine
    assert engine["build"] == {
        "variant": recipe.DEFAULT_VARIANT,
        "cpu_baseline": ["avx", "avx2", "bmi2", "f16c", "fma", "sse4_2"],
        "cpu_missing": [],
        "cuda_version": None,
        "cuda_architectures": [],
    }

"""The engine build recipe: flags that never depend on the build machine, a cache key that
changes with anything that changes the wheel, an instruction-set scan checked against real
compiler output, and a smoke test that names a SIGILL."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from auditor.enginebuild import cache, isa, recipe, smoke
from auditor.models import lockfile
from auditor.models.pins import build_facts

REPO = Path(__file__).resolve().parents[2]


def _spec(name: str = recipe.DEFAULT_VARIANT) -> recipe.BuildSpec:
    return recipe.BuildSpec(
        recipe.VARIANTS[name], recipe.VERSION, "cp311", "linux_x86_64", "gcc 12"
    )


@pytest.mark.parametrize("name", sorted(recipe.VARIANTS))
def test_every_variant_turns_native_off_and_names_every_switch(name: str) -> None:
    args = _spec(name).cmake_args
    assert "-DGGML_NATIVE=OFF" in args
    for switch in recipe.CPUINFO_FLAG:
        assert sum(a.startswith(f"-DGGML_{switch}=") for a in args) == 1, switch
    assert "-DGGML_AVX512=OFF" in args
    assert "-DGGML_AMX_TILE=OFF" in args


def test_default_variant_is_x86_64_v3() -> None:
    assert recipe.VARIANTS[recipe.DEFAULT_VARIANT].cpu_baseline == (
        "avx", "avx2", "bmi2", "f16c", "fma", "sse4_2",
    )  # fmt: skip


def test_cache_key_changes_with_everything_that_changes_the_wheel() -> None:
    base = _spec()
    variants = [
        dataclasses.replace(base, variant=recipe.VARIANTS["cpu-x86-64-v2"]),
        dataclasses.replace(base, version="0.3.37"),
        dataclasses.replace(base, python_tag="cp312"),
        dataclasses.replace(base, compiler="gcc 13"),
        dataclasses.replace(base, platform_tag="linux_aarch64"),
        dataclasses.replace(
            base,
            variant=recipe.VARIANTS["cuda"],
            cuda=recipe.CudaSpec("12.4", ("80",)),
        ),
    ]
    keys = {base.cache_key(), *(v.cache_key() for v in variants)}
    assert len(keys) == len(variants) + 1
    cuda = variants[-1]
    assert (
        cuda.cache_key()
        != dataclasses.replace(cuda, cuda=recipe.CudaSpec("12.4", ("90",))).cache_key()
    )
    assert base.cache_key() == _spec().cache_key()


def test_build_env_drops_flags_that_could_add_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFLAGS", "-march=native")
    monkeypatch.setenv("CXXFLAGS", "-march=native")
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_NATIVE=ON")
    env = cache.build_env(_spec())
    assert "CFLAGS" not in env and "CXXFLAGS" not in env
    assert env["CMAKE_ARGS"] == " ".join(_spec().cmake_args)


def test_a_killed_build_leaves_no_entry_that_looks_finished(tmp_path: Path) -> None:
    spec = _spec()
    entry = cache.entry_dir(spec, tmp_path)
    entry.mkdir(parents=True)
    assert cache.cached(spec, tmp_path) is None  # no build.json
    (entry / "llama_cpp_python-0.3.36-cp311-cp311-linux_x86_64.whl").write_bytes(b"x")
    record = {"key": "0" * 16, "wheel": "llama_cpp_python-0.3.36-cp311-cp311-linux_x86_64.whl",
              "found_isa": [], "build_seconds": 1.0}  # fmt: skip
    (entry / cache.BUILD_RECORD).write_text(json.dumps(record))
    assert cache.cached(spec, tmp_path) is None  # a record for other flags is not this build
    record["key"] = spec.cache_key()
    (entry / cache.BUILD_RECORD).write_text(json.dumps(record))
    hit = cache.cached(spec, tmp_path)
    assert hit is not None and hit.cpu_baseline == spec.variant.cpu_baseline


def test_no_extra_installs_the_engine_from_its_sdist() -> None:
    """pip would build it natively (GGML_NATIVE=ON): only the recipe may install the engine."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    extras = pyproject["project"].get("optional-dependencies", {})
    requirements = [*pyproject["project"]["dependencies"], *(r for x in extras.values() for r in x)]
    assert not [r for r in requirements if r.lower().startswith("llama-cpp-python")]
    assert "-m auditor.enginebuild install" in (REPO / "Makefile").read_text()


# -- instruction-set scan ------------------------------------------------------------------
def test_scan_text_recognises_each_instruction_set() -> None:
    lines = {
        "avx512f": "  1000:\tvaddps %zmm1,%zmm2,%zmm3",
        "amx_tile": "  1004:\ttdpbssd %tmm1,%tmm2,%tmm3",
        "avx2": "  1008:\tvpaddd %ymm1,%ymm2,%ymm3",
        "fma": "  100c:\tvfmadd231ps %xmm1,%xmm2,%xmm3",
        "f16c": "  1010:\tvcvtph2ps %xmm1,%xmm2",
        "avx": "  1014:\tvaddps %ymm1,%ymm2,%ymm3",
        "bmi2": "  1018:\tshlx %rax,%rbx,%rcx",
    }
    for flag, line in lines.items():
        assert flag in isa.scan_text([line]), flag
    assert isa.scan_text(["  101c:\tvperm2f128 $0x1,%ymm1,%ymm2,%ymm3"]) == {"avx"}
    assert isa.scan_text(["  1020:\taddps %xmm1,%xmm2", "Disassembly of section .text:"]) == set()


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
@pytest.mark.parametrize(
    ("flags", "present", "absent"),
    [
        (["-mavx2", "-mfma"], {"avx", "fma"}, {"avx512f"}),
        (["-mavx512f"], {"avx512f"}, set()),
        (["-msse4.2"], set(), {"avx", "avx2", "fma", "avx512f"}),
    ],
)
def test_scan_library_reads_what_the_compiler_emitted(
    tmp_path: Path, flags: list[str], present: set[str], absent: set[str]
) -> None:
    source = tmp_path / "k.c"
    source.write_text(
        "void k(float *restrict a, const float *restrict b, const float *restrict c, int n)"
        "{ for (int i = 0; i < n; i++) a[i] = a[i] * b[i] + c[i]; }\n"
    )
    lib = tmp_path / "libk.so"
    subprocess.run(["gcc", "-O3", "-shared", "-fPIC", *flags, "-o", lib, source], check=True)
    found = isa.scan_library(lib)
    assert present <= found
    assert not (absent & found)


def test_cpu_flags_and_missing_flags() -> None:
    cpuinfo = "processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma\nbugs\t\t: none\n"
    flags = isa.cpu_flags(cpuinfo)
    assert flags == {"fpu", "sse4_2", "avx", "avx2", "fma"}
    assert isa.missing_flags(("avx2", "f16c", "bmi2"), flags) == ("bmi2", "f16c")
    assert isa.cpu_flags("no flags here") == frozenset()


# -- smoke ---------------------------------------------------------------------------------
def _fake_python(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return script


def test_smoke_names_sigill(tmp_path: Path) -> None:
    result = smoke.run_smoke(_fake_python(tmp_path, "kill -ILL $$"), tmp_path / "m.gguf")
    assert not result.ok
    assert "SIGILL" in result.detail and "instruction" in result.detail


def test_smoke_reports_other_deaths_and_errors(tmp_path: Path) -> None:
    killed = smoke.run_smoke(_fake_python(tmp_path, "kill -SEGV $$"), tmp_path / "m.gguf")
    assert not killed.ok and "SIGSEGV" in killed.detail
    failed = smoke.run_smoke(_fake_python(tmp_path, "echo boom >&2; exit 3"), tmp_path / "m")
    assert not failed.ok and failed.detail == "exit 3: boom"
    passed = smoke.run_smoke(_fake_python(tmp_path, "echo 4"), tmp_path / "m.gguf")
    assert passed.ok and passed.detail == "generated 4 token(s)"


def test_no_variant_offered_to_users_is_native() -> None:
    assert not [v.name for v in recipe.VARIANTS.values() if v.native]
    native = recipe.Variant("native", "benchmark only", (), native=True)
    spec = dataclasses.replace(_spec(), variant=native)
    assert spec.cmake_args[0] == "-DGGML_NATIVE=ON"
    assert spec.cache_key() != _spec().cache_key()


def test_build_facts_name_the_flags_this_cpu_lacks() -> None:
    build = lockfile.EngineBuild(
        "cuda", ("avx2", "fma"), (), "gcc", "cp311", lockfile.CudaBuild("12.4", ("90",))
    )
    pin = lockfile.EnginePin("llamacpp", "0.3.36", "wheelhouse", (), (), build)
    facts = build_facts(pin, frozenset({"avx2"}))
    assert facts is not None
    assert facts.cpu_missing == ("fma",)
    assert (facts.cuda_version, facts.cuda_architectures) == ("12.4", ("90",))
    unread = build_facts(pin, None)
    assert unread is not None and unread.cpu_missing is None
    assert build_facts(lockfile.EnginePin("ollama", "1", "tarball", (), ()), frozenset()) is None

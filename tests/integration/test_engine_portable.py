"""The engine this venv runs is the recipe's portable build, and it generates on a CPU that
lacks what the build machine has.

`qemu-x86_64 -cpu Haswell` runs a process on an emulated Haswell: AVX2, FMA, F16C and BMI2,
but no AVX-512 or AMX, whatever the real CPU is. A library compiled natively on a machine
with AVX-512 dies there with SIGILL — the failure a native build meets on a workstation of
another generation, or in a VM that hides instructions its CPU model advertises. The negative
control below shows that the emulator really refuses what it lacks, so the positive test can
fail.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from auditor.embedded.llamacpp import bundled_model_path
from auditor.enginebuild import isa
from auditor.enginebuild.cache import default_cache_root, scan_wheel
from auditor.enginebuild.install import installed_build, installed_matches
from auditor.enginebuild.smoke import run_smoke

pytestmark = pytest.mark.integration
QEMU = shutil.which("qemu-x86_64")
needs_qemu = pytest.mark.skipif(QEMU is None, reason="needs qemu-user (make setup installs it)")


def _emulated_python(tmp_path: Path) -> Path:
    """An interpreter launcher that runs this venv's Python on an emulated Haswell."""
    wrapper = tmp_path / "python-haswell"
    wrapper.write_text(f'#!/bin/sh\nexec {QEMU} -cpu Haswell {sys.executable} "$@" 2>/dev/null\n')
    wrapper.chmod(0o755)
    return wrapper


def test_installed_engine_is_the_recipes_build_and_uses_only_its_baseline(tmp_path: Path) -> None:
    built = installed_build(default_cache_root())
    assert built is not None, "the installed engine is no build of the recipe: run make setup"
    found = scan_wheel(built.wheel, tmp_path)
    assert found <= set(built.spec.variant.cpu_baseline)
    assert not found & {"avx512f", "amx_tile"}
    assert "avx2" in found and "fma" in found  # the baseline is used, not just allowed


@needs_qemu
def test_avx512_code_dies_with_sigill_on_the_emulated_cpu(tmp_path: Path) -> None:
    source = tmp_path / "z.c"
    source.write_text(
        "#include <immintrin.h>\n#include <stdio.h>\nint main(void){volatile float x = 2;"
        "__m512 v = _mm512_set1_ps(x); v = _mm512_mul_ps(v, v);"
        'printf("%f\\n", _mm512_reduce_add_ps(v)); return 0;}\n'
    )
    binary = tmp_path / "z"
    subprocess.run(["gcc", "-O2", "-mavx512f", "-o", binary, source], check=True)
    if "avx512f" in isa.host_cpu_flags():
        assert subprocess.run([binary], capture_output=True, check=False).returncode == 0
    emulated = subprocess.run(
        [QEMU or "qemu-x86_64", "-cpu", "Haswell", binary], capture_output=True, check=False
    )
    assert emulated.returncode == -4  # SIGILL


@needs_qemu
def test_engine_generates_on_an_emulated_cpu_without_avx512(tmp_path: Path) -> None:
    result = run_smoke(_emulated_python(tmp_path), bundled_model_path(), timeout_s=600)
    assert result.ok, result.detail
    assert result.detail.startswith("generated ")


def test_an_engine_from_another_build_is_not_taken_for_ours(tmp_path: Path) -> None:
    """pip calls any llama-cpp-python 0.3.36 'already satisfied'; the recipe compares the
    native libraries' hashes, so a build with other flags is replaced, never kept."""
    built = installed_build(default_cache_root())
    assert built is not None
    assert installed_matches(built.wheel)
    other = tmp_path / built.wheel.name
    with zipfile.ZipFile(built.wheel) as src, zipfile.ZipFile(other, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                data = re.sub(
                    rb"(llama_cpp/lib/libggml-cpu[^,]*,sha256=)[\w-]+", rb"\1" + b"0" * 43, data
                )
            dst.writestr(info, data)
    assert not installed_matches(other)

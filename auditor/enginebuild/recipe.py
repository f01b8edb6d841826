"""The one build recipe for llama.cpp (llama-cpp-python[server]): variants, flags, cache key.

llama-cpp-python ships only an sdist and builds llama.cpp with CMake, whose default is
`GGML_NATIVE=ON`: the CPU backend is compiled for whatever the build machine claims to run.
A wheel built that way dies with SIGILL on the first generation on any CPU that lacks one of
those instructions (a workstation of another generation, or a VM that hides AMX or AVX-512
from processes while the CPU model advertises it). Every variant here therefore turns native
tuning off and names its instruction sets explicitly.

llama.cpp can instead build every CPU variant and pick one at run time
(`GGML_CPU_ALL_VARIANTS=ON` with `GGML_BACKEND_DL=ON`), but llama-cpp-python 0.3.36 does not
load dynamic backends (its bindings never call `ggml_backend_load_all`, so model loading
fails with "no backends are loaded"), and building every variant multiplies the CPU backend's
compile time by about ten. An explicit baseline is the recipe.

pip's wheel cache keys a built wheel by name and version only, so a wheel built with other
flags would be reused silently; the recipe never consults it (`--no-cache-dir`) and keeps its
own cache keyed by everything that changes the wheel's bytes (see `cache_key`).
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from dataclasses import dataclass

from auditor.errors import UsageError

PACKAGE = "llama-cpp-python"
VERSION = "0.3.36"
REQUIREMENT = f"{PACKAGE}[server]=={VERSION}"
RECIPE_REVISION = 1  # bump when the build procedure changes in a way flags do not show

# Every instruction-set switch of ggml's CPU backend, so that none is left to a default that
# depends on the build machine.
_ISA_SWITCHES = (
    "SSE42",
    "AVX",
    "AVX2",
    "BMI2",
    "FMA",
    "F16C",
    "AVX_VNNI",
    "AVX512",
    "AVX512_VBMI",
    "AVX512_VNNI",
    "AVX512_BF16",
    "AMX_TILE",
    "AMX_INT8",
    "AMX_BF16",
)
# ggml switch -> the /proc/cpuinfo flag a CPU must advertise to run code built with it.
CPUINFO_FLAG = {
    "SSE42": "sse4_2",
    "AVX": "avx",
    "AVX2": "avx2",
    "BMI2": "bmi2",
    "FMA": "fma",
    "F16C": "f16c",
    "AVX_VNNI": "avx_vnni",
    "AVX512": "avx512f",
    "AVX512_VBMI": "avx512vbmi",
    "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16",
    "AMX_TILE": "amx_tile",
    "AMX_INT8": "amx_int8",
    "AMX_BF16": "amx_bf16",
}
DEFAULT_CUDA_ARCHITECTURES = ("80", "86", "89", "90")


@dataclass(frozen=True)
class Variant:
    name: str
    summary: str
    isa: tuple[str, ...]  # ggml switches turned on; every other switch is turned off
    cuda: bool = False
    # GGML_NATIVE=ON: tuned for the build machine only. No variant offered to users is native;
    # benchmarks/bench_portable.py builds one to measure what portability costs.
    native: bool = False

    @property
    def cpu_baseline(self) -> tuple[str, ...]:
        return tuple(sorted(CPUINFO_FLAG[s] for s in self.isa))


VARIANTS = {
    v.name: v
    for v in (
        Variant(
            "cpu-x86-64-v3",
            "x86-64-v3: AVX2, FMA, F16C, BMI2 (Intel Haswell 2013+, AMD Excavator/Zen+)",
            ("SSE42", "AVX", "AVX2", "BMI2", "FMA", "F16C"),
        ),
        Variant(
            "cpu-x86-64-v2",
            "x86-64-v2: SSE4.2 only, for CPUs without AVX2 (about 2.5x slower decode)",
            ("SSE42",),
        ),
        Variant(
            "cuda",
            "NVIDIA GPUs (CUDA), with the x86-64-v3 CPU backend for what stays on the CPU",
            ("SSE42", "AVX", "AVX2", "BMI2", "FMA", "F16C"),
            cuda=True,
        ),
    )
}
DEFAULT_VARIANT = "cpu-x86-64-v3"


@dataclass(frozen=True)
class CudaSpec:
    version: str  # the toolkit that compiled it, from `nvcc --version`
    architectures: tuple[str, ...]  # CMAKE_CUDA_ARCHITECTURES, e.g. ("80", "86")


@dataclass(frozen=True)
class BuildSpec:
    """Everything that decides the bytes of the engine wheel."""

    variant: Variant
    version: str
    python_tag: str  # cp311
    platform_tag: str  # linux_x86_64
    compiler: str  # first line of `cc --version`
    cuda: CudaSpec | None = None

    @property
    def cmake_args(self) -> tuple[str, ...]:
        if self.variant.native:
            return ("-DGGML_NATIVE=ON", "-DGGML_CCACHE=OFF")
        args = ["-DGGML_NATIVE=OFF", "-DGGML_CCACHE=OFF"]
        args += [f"-DGGML_{s}={'ON' if s in self.variant.isa else 'OFF'}" for s in _ISA_SWITCHES]
        if self.cuda is not None:
            args += [
                "-DGGML_CUDA=ON",
                f"-DCMAKE_CUDA_ARCHITECTURES={';'.join(self.cuda.architectures)}",
            ]
        return tuple(args)

    def cache_key(self) -> str:
        fields = {
            "package": PACKAGE,
            "version": self.version,
            "recipe": RECIPE_REVISION,
            "cmake_args": list(self.cmake_args),
            "python_tag": self.python_tag,
            "platform_tag": self.platform_tag,
            "compiler": self.compiler,
            "cuda": None if self.cuda is None else self.cuda.version,
        }
        blob = json.dumps(fields, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def label(self) -> str:
        return f"{self.version}-{self.variant.name}-{self.python_tag}-{self.cache_key()}"


def variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        known = ", ".join(VARIANTS)
        raise UsageError(f"unknown engine build variant {name!r} (known: {known})") from None


def _first_line(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.splitlines()
    return lines[0].strip() if done.returncode == 0 and lines else None


def _cuda_version() -> str:
    line = None
    try:
        done = subprocess.run(
            ["nvcc", "--version"], capture_output=True, text=True, timeout=30, check=False
        )
        line = next((x for x in done.stdout.splitlines() if "release" in x), None)
    except (OSError, subprocess.TimeoutExpired):
        pass
    if line is None:
        raise UsageError("the cuda variant needs the CUDA toolkit on this machine (nvcc on PATH)")
    # "Cuda compilation tools, release 12.4, V12.4.131"
    return line.split("release", 1)[1].split(",", 1)[0].strip()


def spec_for(
    variant_name: str, architectures: tuple[str, ...] = DEFAULT_CUDA_ARCHITECTURES
) -> BuildSpec:
    """The build spec for this machine's Python and compiler."""
    chosen = variant(variant_name)
    if platform.machine() not in ("x86_64", "AMD64"):
        raise UsageError(
            f"the engine recipe builds for x86-64; this machine is {platform.machine()}"
        )
    compiler = _first_line(["cc", "--version"])
    if compiler is None:
        raise UsageError("building the engine needs a C compiler (apt-get install build-essential)")
    cuda = None
    if chosen.cuda:
        if not architectures or not all(a.isdigit() for a in architectures):
            raise UsageError("--cuda-arch takes compute capabilities such as 80 or 86")
        cuda = CudaSpec(_cuda_version(), tuple(architectures))
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    return BuildSpec(chosen, VERSION, tag, "linux_x86_64", compiler, cuda)

"""Which instruction sets a native library really uses, and which ones this CPU advertises.

The recipe's flags say what the compiler was allowed to emit; a scan of the disassembly says
what it did emit (and catches a build that picked up `-march=native` from somewhere else).
Each instruction set is recognised by registers or mnemonics that only it has:

- AVX-512 (avx512f): `%zmm` registers, opmask registers `%k1`-`%k7`, or the upper sixteen
  `%xmm16`-`%xmm31` / `%ymm16`-`%ymm31` that only EVEX encodings reach;
- AMX (amx_tile): tile instructions (`ldtilecfg`, `tileloadd`, `tdpb..`);
- AVX2: 256-bit integer forms (`vpaddd %ymm…`, `vpermd`, `vinserti128`, gathers, …);
- FMA: `vfmadd…`, `vfmsub…`, `vfnmadd…`, `vfnmsub…`;
- F16C: `vcvtph2ps`, `vcvtps2ph`;
- AVX: any `%ymm` register;
- BMI2: `pdep`, `pext`, `bzhi`, `mulx`, `rorx`, `sarx`, `shlx`, `shrx`.
SSE4.2 and older are not scanned: every x86-64 CPU made since 2009 has them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from auditor.errors import InputError

_PATTERNS = {
    "avx512f": re.compile(r"%zmm\d|%k[1-7]\b|%[xy]mm(1[6-9]|2\d|3[01])\b"),
    "amx_tile": re.compile(r"\b(ldtilecfg|sttilecfg|tileloadd\w*|tilestored|tilezero|tdpb\w+)\b"),
    "avx2": re.compile(
        r"\b(vp\w+|vinserti128|vextracti128|vperm2i128|vpermq|vpermd|v\w*gather\w+)\s[^#]*%ymm"
    ),
    "fma": re.compile(r"\bv(fmadd|fmsub|fnmadd|fnmsub|fmaddsub|fmsubadd)\d{3}\w*"),
    "f16c": re.compile(r"\bvcvt(ph2ps|ps2ph)\b"),
    "avx": re.compile(r"%ymm\d"),
    "bmi2": re.compile(r"\b(pdep|pext|bzhi|mulx|rorx|sarx|shlx|shrx)\b"),
}
# vpbroadcast/vpermilps etc. on ymm from AVX(1) are floating point; AVX2 integer forms start
# with "vp" and are not among AVX's few vp* ymm instructions:
_AVX1_VP_YMM = re.compile(r"\b(vpermilps|vpermilpd|vperm2f128|vptest)\b")


def scan_text(lines: Iterable[str]) -> set[str]:
    """cpuinfo flag names of the instruction sets found in objdump's disassembly."""
    found: set[str] = set()
    for line in lines:
        if "\t" not in line:
            continue
        instruction = line.rsplit("\t", 1)[-1]
        for flag, pattern in _PATTERNS.items():
            if flag in found or not pattern.search(instruction):
                continue
            if flag == "avx2" and _AVX1_VP_YMM.search(instruction):
                continue
            found.add(flag)
    return found


def scan_library(path: Path) -> set[str]:
    """Disassemble one shared library and return the instruction sets it uses."""
    objdump = shutil.which("objdump")
    if objdump is None:
        raise InputError("scanning the engine's libraries needs objdump (apt-get install binutils)")
    with subprocess.Popen(
        [objdump, "-d", "--no-show-raw-insn", "--", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    ) as proc:
        assert proc.stdout is not None
        found = scan_text(proc.stdout)
        error = proc.stderr.read() if proc.stderr else ""
    if proc.returncode != 0:
        raise InputError(f"objdump could not read {path}: {error.strip()[:200]}")
    return found


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The `flags` of the first processor in /proc/cpuinfo text."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def host_cpu_flags() -> frozenset[str]:
    try:
        return cpu_flags(Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace"))
    except OSError:
        return frozenset()


def missing_flags(required: Iterable[str], available: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(f for f in required if f not in available))

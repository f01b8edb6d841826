"""What the portable engine build costs: decode tok/s of the recipe's build against a native
build (`GGML_NATIVE=ON`, tuned for this machine's CPU), in one run on the same machine.

    .venv/bin/python benchmarks/bench_portable.py [--tokens 128] [--rounds 5] [--json]

The recipe's wheel comes from the project's cache (`make setup` put it there). The native
wheel is built here once (about 10 minutes on 2 cores) into its own cache directory, keyed
like the recipe's, and is never installed anywhere: each build is unpacked into a directory
of its own and imported from there by a child interpreter, so both run the same Python, the
same model (SmolLM2-135M) and the same prompt. Rounds alternate native / portable so that
load drift on the machine hits both alike; each round reports the decode rate of one greedy
generation of --tokens tokens (time from the first to the last streamed token), and the
result is the median of the per-round ratios portable / native. Run it only where a native
build works (the CPU executes everything it advertises); the number is a property of this
CPU: on a CPU with AVX-512 the native build may use it, on one without, the two builds are
the same code and the ratio is ~1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from auditor.embedded.llamacpp import bundled_model_path
from auditor.enginebuild import cache, recipe

CHILD = r"""
import sys, time
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=512, n_threads=int(sys.argv[3]), verbose=False, seed=1)
llm.create_completion("warm up", max_tokens=8, temperature=0.0)
stamps = []
for _ in llm.create_completion("def fibonacci(n):", max_tokens=int(sys.argv[2]),
                               temperature=0.0, stream=True):
    stamps.append(time.perf_counter())
print((len(stamps) - 1) / (stamps[-1] - stamps[0]))
"""


NATIVE = recipe.Variant("native", "tuned for this machine's CPU (-march=native)", (), native=True)


def _native_built(portable: recipe.BuildSpec, root: Path) -> cache.BuiltEngine:
    native = dataclasses.replace(portable, variant=NATIVE)
    return cache.ensure_built(native, root, lambda line: print(line, file=sys.stderr))


def _unpack(wheel: Path, dest: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(dest)
    return dest


def _rate(site: Path, tokens: int, threads: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(bundled_model_path()), str(tokens), str(threads)],
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    root = cache.default_cache_root()
    portable_spec = recipe.spec_for(recipe.DEFAULT_VARIANT)
    portable = cache.cached(portable_spec, root)
    if portable is None:
        parser.error("no recipe build in the cache: run make setup first")
    native = _native_built(portable_spec, root)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-portable-") as scratch:
        sites = {
            "native": _unpack(native.wheel, Path(scratch, "native")),
            "portable": _unpack(portable.wheel, Path(scratch, "portable")),
        }
        for _ in range(args.rounds):
            rates = {name: _rate(site, args.tokens, args.threads) for name, site in sites.items()}
            rows.append({**rates, "ratio": rates["portable"] / rates["native"]})
    result = {
        "tokens": args.tokens,
        "rounds": rows,
        "native_tok_s_median": statistics.median(r["native"] for r in rows),
        "portable_tok_s_median": statistics.median(r["portable"] for r in rows),
        "ratio_median": statistics.median(r["ratio"] for r in rows),
        "native_isa": list(native.found_isa),
        "portable_isa": list(portable.found_isa),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for row in rows:
            print(f"native {row['native']:7.1f} tok/s  portable {row['portable']:7.1f} tok/s  "
                  f"ratio {row['ratio']:.3f}")  # fmt: skip
        print(f"median ratio portable/native: {result['ratio_median']:.3f} "
              f"(native uses {', '.join(native.found_isa)})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

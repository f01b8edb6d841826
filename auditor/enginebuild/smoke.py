"""One short generation with an engine build, in a child process, to prove it runs here.

A build that uses an instruction this CPU does not execute loads fine and dies with SIGILL
on its first generation, so loading is no proof; a few generated tokens are. The child is a
separate interpreter so that its death is observed, not suffered.

`python -m auditor.enginebuild.smoke MODEL.gguf` is the child: it prints the number of
tokens generated.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SMOKE_TOKENS = 4
SMOKE_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class SmokeResult:
    ok: bool
    detail: str  # one line: tokens generated, or why it failed


def run_smoke(python: Path | str, model: Path, timeout_s: float = SMOKE_TIMEOUT_S) -> SmokeResult:
    """Generate a few tokens with the llama_cpp module of `python`."""
    command = [str(python), "-m", "auditor.enginebuild.smoke", str(model)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        return SmokeResult(False, f"no tokens within {timeout_s:.0f} s")
    if done.returncode < 0:
        return SmokeResult(False, _signal_text(-done.returncode))
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return SmokeResult(False, f"exit {done.returncode}: {last[:300]}")
    return SmokeResult(True, f"generated {done.stdout.strip()} token(s)")


def _signal_text(number: int) -> str:
    known = {s.value: s.name for s in signal.Signals}
    name = known.get(number, f"signal {number}")
    if number == signal.SIGILL:
        return (
            "the engine died with SIGILL (illegal instruction): its build uses an instruction "
            "this CPU does not execute"
        )
    return f"the engine died with {name}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        sys.stderr.write("usage: python -m auditor.enginebuild.smoke MODEL.gguf\n")
        return 2
    from llama_cpp import Llama  # noqa: PLC0415 (the engine under test: the child's only)

    llm = Llama(model_path=args[0], n_ctx=256, n_threads=1, verbose=False, seed=1)
    out = llm.create_completion("def add(a, b):", max_tokens=SMOKE_TOKENS, temperature=0.0)
    usage = out.get("usage", {}) if isinstance(out, dict) else {}
    sys.stdout.write(f"{usage.get('completion_tokens', 0)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

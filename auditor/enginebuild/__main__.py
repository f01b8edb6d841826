"""`python -m auditor.enginebuild install`: the engine for this environment (`make setup`).

Builds the recipe's wheel (or takes it from the cache), installs it into the running
interpreter's environment and proves it with one short generation of the bundled model.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from auditor.console import Console
from auditor.embedded.llamacpp import bundled_model_path
from auditor.enginebuild import isa
from auditor.enginebuild.cache import BuildError, default_cache_root, ensure_built
from auditor.enginebuild.install import pip_install
from auditor.enginebuild.recipe import DEFAULT_VARIANT, VARIANTS, spec_for
from auditor.enginebuild.smoke import run_smoke
from auditor.errors import OffgridError
from auditor.exitcodes import ExitCode


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m auditor.enginebuild")
    actions = parser.add_subparsers(dest="action", required=True)
    install = actions.add_parser("install", help="build or reuse the engine wheel and install it")
    install.add_argument("--variant", choices=sorted(VARIANTS), default=DEFAULT_VARIANT)
    install.add_argument("--cache", type=Path, help="cache root (default: /var/cache/offgrid)")
    install.add_argument("--model", type=Path, help="GGUF for the smoke generation")
    return parser


def _install(args: argparse.Namespace, console: Console) -> int:
    spec = spec_for(args.variant)
    missing = isa.missing_flags(spec.variant.cpu_baseline, isa.host_cpu_flags())
    if missing:
        raise BuildError(
            f"this CPU lacks {', '.join(missing)}, which variant {spec.variant.name} needs; "
            "use ENGINE_VARIANT=cpu-x86-64-v2"
        )
    built = ensure_built(spec, args.cache or default_cache_root(), console.info)
    pip_install(built)
    smoke = run_smoke(sys.executable, args.model or bundled_model_path())
    if not smoke.ok:
        raise BuildError(f"the engine does not run on this machine: {smoke.detail}")
    console.info(
        f"engine {built.wheel.name} ({spec.variant.name}, needs {', '.join(built.cpu_baseline)}): "
        f"smoke generation {smoke.detail}"
    )
    return ExitCode.OK


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    console = console or Console()
    args = _parser().parse_args(argv)
    try:
        return _install(args, console)
    except OffgridError as exc:
        console.error(str(exc))
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())

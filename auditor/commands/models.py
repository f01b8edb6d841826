"""`offgrid models verify`: check a model store (and optionally the engine) against a lock.

Exit codes as `offgrid audit`: 0 everything matches, 1 a model, blob or the engine differs
or something unpinned is present, 2 bad usage or an unusable lock file, 3 something could
not be read. `--full` re-hashes every blob; otherwise the verified cache decides (see
auditor/models/cache.py) and the output says which mode ran.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from auditor.console import Console
from auditor.engine_kind import EngineKind
from auditor.enginebuild.isa import host_cpu_flags
from auditor.errors import InputError, UsageError
from auditor.exitcodes import ExitCode
from auditor.fsutil import dumps_json
from auditor.models.cache import DEFAULT_MAX_AGE_DAYS, DEFAULT_STATE_DIR
from auditor.models.integrity import (
    OLLAMA_DEFAULT_STORE,
    IntegrityRun,
    Target,
    run_integrity,
)
from auditor.models.summary import engine_lines, stats_line, store_lines
from auditor.report.from_facts import integrity_section
from auditor.report.model import integrity_json

from ._progress import byte_progress

NAME = "models"
HELP = "Verify installed models (and the engine) against an offgrid lock file."


def _target(args: argparse.Namespace) -> Target:
    if args.engine_binary and args.engine_pid:
        raise UsageError("give --engine-binary (ollama) or --engine-pid (llamacpp), not both")
    kind = EngineKind.OLLAMA if args.engine_binary else None
    kind = EngineKind.LLAMACPP if args.engine_pid else kind
    flags = host_cpu_flags() or None
    return Target(args.store, args.layout, kind, args.engine_binary, args.engine_pid, flags)


def _text(run: IntegrityRun) -> str:
    lines = [f"lock {run.lock_path} (sha256 {run.lock_sha256})"]
    lines += engine_lines(
        run.engine, run.engine_note if run.engine_note != "no engine to check" else ""
    )
    if run.store is not None:
        lines += store_lines(run.store)
    if run.store_error:
        lines.append(f"ERROR      {run.store_error}")
    if run.stats is not None:
        lines.append(stats_line(run.stats))
    return "\n".join(lines)


def exit_code(run: IntegrityRun) -> ExitCode:
    engine_failed = run.engine is not None and run.engine.status == "failed"
    engine_missing = run.engine is None and run.engine_note.startswith("the lock pins no")
    store = run.store
    store_failed = store is not None and (
        bool(store.unpinned) or any(i.status == "failed" for i in store.items)
    )
    if engine_failed or engine_missing or store_failed:
        return ExitCode.FAILED
    unreadable = store is None or any(i.status == "unreadable" for i in store.items)
    if unreadable or (run.engine is not None and run.engine.status == "unreadable"):
        return ExitCode.INCOMPLETE
    return ExitCode.OK


def _verify(args: argparse.Namespace, console: Console) -> int:
    if not 0 <= args.max_age_days <= 36600:  # NaN fails this too
        raise UsageError(
            f"--max-age-days must be a number of days from 0 to 36600, not {args.max_age_days}"
        )
    if not args.store.is_dir():
        raise InputError(f"model store not found: {args.store} (give --store DIR)")
    with byte_progress(console, "verify models", None) as progress:
        run = run_integrity(
            args.lock,
            _target(args),
            full=args.full,
            cache_dir=args.cache_dir,
            max_age_days=args.max_age_days,
            progress=progress,
        )
    if run.error:
        raise InputError(run.error)
    if args.format == "json":
        console.out(dumps_json(integrity_json(integrity_section(run))))
    else:
        console.out(_text(run))
    return exit_code(run)


def register(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="models_action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="verify a model store against a lock file")
    verify.add_argument("--lock", type=Path, required=True, help="offgrid.lock.json")
    verify.add_argument(
        "--store",
        type=Path,
        default=OLLAMA_DEFAULT_STORE,
        help=f"Ollama store or GGUF directory (default: {OLLAMA_DEFAULT_STORE})",
    )
    verify.add_argument("--layout", choices=("ollama", "gguf"), help="default: detect")
    verify.add_argument("--full", action="store_true", help="re-hash every blob")
    verify.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"verified-hash cache and its key (default: {DEFAULT_STATE_DIR})",
    )
    verify.add_argument(
        "--max-age-days",
        type=float,
        default=DEFAULT_MAX_AGE_DAYS,
        help="run a full re-hash when the last one is older (default: %(default)s)",
    )
    verify.add_argument("--engine-binary", help="also check this ollama executable")
    verify.add_argument("--engine-pid", type=int, help="also check this llama.cpp server's libs")
    verify.add_argument("--format", choices=("text", "json"), default="text")
    verify.set_defaults(models_handler=_verify)


def run(args: argparse.Namespace, console: Console) -> int:
    return int(args.models_handler(args, console))

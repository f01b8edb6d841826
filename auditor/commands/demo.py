"""`offgrid demo`: the whole job on the embedded default engine, start to finish.

Starts llama.cpp's server with the bundled SmolLM2-135M model on loopback, audits it,
benchmarks it, writes the compliance-and-performance report in every format and stops
the engine. The engine here is not provisioned (no systemd unit, no sandbox, no egress
rule), so the audit is expected to report findings: that is the point of showing it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
from dataclasses import replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from auditor.audit import run_audit
from auditor.bench.benchmark import run_benchmark
from auditor.bench.coldstart import ManagedEngineRestarter
from auditor.bench.config import BenchConfig
from auditor.checks.runner import exit_code
from auditor.console import Console
from auditor.embedded import llamacpp
from auditor.engine_kind import EngineKind
from auditor.errors import UsageError
from auditor.exitcodes import ExitCode
from auditor.inventory.interface import AuditOptions
from auditor.models import lockfile
from auditor.models.hashing import sha256_file
from auditor.report.model import Report
from auditor.report.render import FILE_SUFFIXES
from auditor.report.write import write_all
from auditor.verdicts import summarize

NAME = "demo"
HELP = "start the embedded engine on loopback, audit and benchmark it, write the report"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", type=Path, default=Path("reports"), help="default: reports")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per category (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up runs per category")
    parser.add_argument(
        "--concurrency", default="1,2", help="users for the concurrency sweep (default 1,2)"
    )
    parser.add_argument("--model", type=Path, help="a GGUF file instead of the bundled SmolLM2")


def _example(name: str) -> Path:
    return Path(str(resources.files("auditor.data").joinpath("examples", name)))


def _bench_config(args: argparse.Namespace, engine: llamacpp.RunningEngine) -> BenchConfig:
    try:
        levels = tuple(int(x) for x in args.concurrency.split(",") if x.strip())
    except ValueError as exc:
        raise UsageError(f"--concurrency takes numbers like 1,2,4: {args.concurrency}") from exc
    return BenchConfig(
        endpoint=engine.base_url,
        api="openai",
        model=engine.config.alias,
        runs=args.runs,
        warmup=args.warmup,
        concurrency=levels,
        cold_start=True,
        cloud_reference=_example("cloud-reference.seed.json"),
        prices=_example("prices.example.toml"),
    )


def _pin_model(model: Path, alias: str, directory: Path) -> Path:
    """A lock pinning the demo's model, so the integrity controls have something to check.

    The demo engine comes from the venv, not from a bundle, so only the model is pinned.
    """
    digest = sha256_file(model)
    if digest.sha256 is None:
        raise UsageError(f"cannot read the model file {model}: {digest.error}")
    pin = lockfile.GGUFPin(alias, f"models/gguf/{model.name}", digest.sha256, digest.size)
    path = directory / "offgrid.lock.json"
    lockfile.save(lockfile.Lock().with_gguf(pin), path)
    return path


def _run_directory(base: Path) -> tuple[Path, str]:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    stem = f"offgrid-{socket.gethostname()}-{stamp}"
    directory = base / stem
    directory.mkdir(parents=True, exist_ok=False)
    return directory, stem


def _point_latest(base: Path, directory: Path) -> None:
    """reports/latest -> the newest run, swapped atomically."""
    tmp = base / ".latest.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(directory.name)
    os.replace(tmp, base / "latest")


def run(args: argparse.Namespace, console: Console) -> int:
    if args.runs < 1 or args.warmup < 0:
        raise UsageError("--runs must be at least 1 and --warmup at least 0")
    model = args.model or llamacpp.bundled_model_path()
    if not model.is_file():
        raise UsageError(f"no such model file: {model}")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    directory, stem = _run_directory(args.output_dir)
    config = llamacpp.EngineConfig(model=model)
    console.info(f"starting llama.cpp server with {model.name} on 127.0.0.1 …")
    engine = llamacpp.start(config, directory / "engine.log")
    restarter = ManagedEngineRestarter(engine)
    try:
        console.info(f"engine ready at {engine.base_url} in {engine.startup_ms:.0f} ms")
        lock = _pin_model(model, config.alias, directory)
        options = AuditOptions(engine=EngineKind.LLAMACPP, engine_pid=engine.pid, lock_path=lock)
        report = run_audit(options, None, console)
        benchmark = run_benchmark(_bench_config(args, engine), console, restarter)
    finally:
        llamacpp.stop(restarter.engine)
    report = replace(report, benchmark=benchmark)
    paths = write_all(report, directory, stem, list(FILE_SUFFIXES))
    _point_latest(args.output_dir, directory)
    _summarize(console, report, paths, directory)
    return ExitCode.OK


def _summarize(console: Console, report: Report, paths: list[Path], directory: Path) -> None:
    counts = summarize(report.controls)
    verdict = exit_code(report.controls)
    console.info(
        f"audit: {counts['pass']} pass, {counts['fail']} fail, {counts['error']} error, "
        f"{counts['not_applicable']} not applicable"
    )
    if verdict is not ExitCode.OK:
        console.info(
            "findings are expected here: the demo engine runs from the venv, without the "
            "pinned bundle, systemd unit, sandbox and egress rule that playbooks/site.yml "
            "provision (`make workstation` shows a provisioned one)"
        )
    console.info(f"engine log: {directory / 'engine.log'}")
    for path in paths:
        console.out(str(path))

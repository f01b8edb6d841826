"""`offgrid bench`: benchmark a local engine; `offgrid bench compare OLD NEW` for CI."""

from __future__ import annotations

import argparse
import math
import os
import socket
from collections.abc import Mapping
from pathlib import Path

from auditor import __version__
from auditor.audit import host_info
from auditor.bench.benchmark import run_benchmark
from auditor.bench.compare import compare, load_section, regressions
from auditor.bench.config import APIS, BenchConfig
from auditor.bench.endpoint import is_loopback, resolved_addresses, split_endpoint
from auditor.bench.results import BenchmarkSection
from auditor.bench.suite import load_suite
from auditor.console import Console
from auditor.errors import UsageError
from auditor.exitcodes import ExitCode
from auditor.fsutil import atomic_write_text, dumps_json, preflight
from auditor.gateway import credential
from auditor.report.bench_json import benchmark_to_json
from auditor.report.model import PrivilegeSection, Report
from auditor.report.render import render, renderer_for
from auditor.report.validate import ensure_valid

NAME = "bench"
HELP = "Benchmark the local engine (TTFT, TPOT, tok/s, cold start, concurrency, crossover, TCO)."

__all__ = ["HELP", "NAME", "register", "run", "run_benchmark"]


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected integers like 1,2,4, got {text!r}") from exc


def _name_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _register_run(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--endpoint", help="engine or gateway base URL, e.g. http://127.0.0.1:11434")
    add(
        "--api-key-file",
        type=Path,
        help="file (mode 0600) holding the gateway credential, sent as Authorization: Bearer "
        f"(default: ${credential.ENV_VAR} when set)",
    )
    add("--api", choices=APIS, help="ollama (NDJSON /api/*) or openai (SSE /v1/*)")
    add("--model", help="model name as the engine knows it")
    add(
        "--mode",
        help="ollama: generate|chat (default generate); openai: chat|completions (default chat)",
    )
    add("--runs", type=int, default=5, help="measured runs per category (default 5)")
    add(
        "--warmup", type=int, default=1, help="unmeasured warm-up requests per category (default 1)"
    )
    add("--categories", type=_name_list, default=(), help="comma list (default: all)")
    add("--concurrency", type=_int_list, default=(), help="user counts to sweep, e.g. 1,2,4")
    add("--concurrency-category", default="autocomplete", help="category the sweep sends")
    add("--cold-start", action="store_true", help="also measure a cold start")
    add("--restart-unit", help="systemd unit to restart for an OpenAI-compatible cold start")
    add(
        "--no-nonce",
        dest="nonce",
        action="store_false",
        help="send prompts without a per-request nonce (prefix caches may flatter)",
    )
    add("--seed", type=int, default=42, help="sampling seed sent to the engine (default 42)")
    add("--temperature", type=float, default=0.0, help="sampling temperature (default 0)")
    add(
        "--failure-threshold",
        type=float,
        default=0.1,
        help="largest fraction of failed runs per category (default 0.1)",
    )
    add("--timeout", type=float, default=300.0, help="per-request timeout in seconds")
    add(
        "--percentiles",
        choices=("linear", "nearest-rank"),
        default="linear",
        help="percentile method (default linear, numpy's default)",
    )
    add(
        "--no-retokenize",
        dest="retokenize",
        action="store_false",
        help="never ask the server's tokenizer to count a stream without usage",
    )
    add("--cloud-reference", type=Path, help="cloud results JSON or reference file (crossover)")
    add("--prices", type=Path, help="price file (TOML) for TCO and break-even")
    add(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback endpoint (the prompts leave this machine)",
    )
    add("--output", type=Path, help="write the results here, atomically (default: stdout)")
    add(
        "--format",
        default="section",
        help="section: the benchmark section JSON (default); json, html, markdown, …: a full "
        "report that holds only the benchmark",
    )


def register(parser: argparse.ArgumentParser) -> None:
    _register_run(parser)
    sub = parser.add_subparsers(
        dest="bench_command", metavar="{compare}", parser_class=type(parser)
    )
    cmp = sub.add_parser("compare", help="compare two results; exit 1 on a regression")
    cmp.add_argument("old", type=Path)
    cmp.add_argument("new", type=Path)
    cmp.add_argument(
        "--threshold",
        type=float,
        default=10.0,
        help="percent a metric may worsen before it counts (default 10)",
    )


def credential_from(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """The gateway credential and where it came from: --api-key-file, else the environment."""
    if getattr(args, "api_key_file", None) is not None:
        return credential.read_file(args.api_key_file, "--api-key-file"), "file"
    value = credential.from_environment(environ)
    return (value, "environment") if value is not None else (None, None)


def _check_clear_text(endpoint: str | None, api_key: str | None) -> None:
    if not endpoint or api_key is None or not endpoint.startswith("http://"):
        return
    host, _port = split_endpoint(endpoint)
    if not all(is_loopback(a) for a in resolved_addresses(host, _port)):
        raise UsageError(
            f"refusing to send the credential in clear text to {host}: use the gateway's "
            "https:// team listener"
        )


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    missing = [f"--{name}" for name in ("endpoint", "api", "model") if not getattr(args, name)]
    if missing:
        raise UsageError(f"bench needs {', '.join(missing)}")
    api_key, source = credential_from(args, os.environ)
    _check_clear_text(args.endpoint, api_key)
    return BenchConfig(
        endpoint=args.endpoint,
        api=args.api,
        model=args.model,
        runs=args.runs,
        warmup=args.warmup,
        categories=args.categories,
        concurrency=args.concurrency,
        concurrency_category=args.concurrency_category,
        nonce=args.nonce,
        temperature=args.temperature,
        seed=args.seed,
        failure_threshold=args.failure_threshold,
        timeout_s=args.timeout,
        cold_start=args.cold_start,
        restart_unit=args.restart_unit,
        cloud_reference=args.cloud_reference,
        prices=args.prices,
        allow_remote=args.allow_remote,
        mode=args.mode,
        retokenize=args.retokenize,
        percentile_method=args.percentiles,
        api_key=api_key,
        credential_source=source,
    )


def _benchmark_report(section: BenchmarkSection) -> Report:
    """A report that carries only the benchmark: no control was evaluated."""
    return Report(
        tool_version=__version__,
        host=host_info(socket.gethostname()),
        started_at=section.started_at or "",
        finished_at=section.finished_at or "",
        privilege=PrivilegeSection(
            os.geteuid(), os.geteuid() == 0, "benchmark only: no controls were evaluated"
        ),
        engine=None,
        controls=(),
        benchmark=section,
    )


def _write(section: BenchmarkSection, fmt: str, output: Path | None, console: Console) -> None:
    if fmt == "section":
        text = dumps_json(benchmark_to_json(section)) + "\n"
    else:
        report = _benchmark_report(section)
        ensure_valid(report)
        text = render(report, fmt)
    if output is None:
        console.out(text)
        return
    atomic_write_text(output, text)
    console.info(f"benchmark results written to {output}")


def _in_range(value: float, flag: str, low: float, high: float) -> float:
    if not math.isfinite(value) or not low <= value <= high:
        raise UsageError(f"{flag} must be a number from {low:g} to {high:g}, not {value}")
    return value


def check_run_args(args: argparse.Namespace) -> None:
    """Every flag of a run checked before the first request, so no run ends in a usage error."""
    _in_range(args.timeout, "--timeout", 0.001, 86400.0)
    _in_range(args.temperature, "--temperature", 0.0, 10.0)
    _in_range(args.runs, "--runs", 1, 100000)
    _in_range(args.warmup, "--warmup", 0, 100000)
    for users in args.concurrency:
        _in_range(users, "--concurrency", 1, 4096)
    if args.endpoint:
        split_endpoint(args.endpoint)
    suite = load_suite().names
    for name in (*args.categories, args.concurrency_category):
        if name not in suite:
            flag = "--categories" if name in args.categories else "--concurrency-category"
            raise UsageError(f"{flag}: unknown category {name!r} (known: {', '.join(suite)})")
    if args.format != "section":
        renderer_for(args.format)  # an unknown format fails before the run, not after it
    if args.output is not None:
        preflight(args.output)


def run_compare(args: argparse.Namespace, console: Console) -> int:
    _in_range(args.threshold, "--threshold", 0.0, 1e6)
    changes = compare(load_section(args.old), load_section(args.new))
    worse = regressions(changes, args.threshold)
    for change in worse:
        console.out(f"REGRESSION {change.describe()}")
    if worse:
        console.error(f"{len(worse)} metric(s) regressed by more than {args.threshold:g}%")
        return ExitCode.FAILED
    console.info(f"no regression beyond {args.threshold:g}% in {len(changes)} compared metrics")
    return ExitCode.OK


def run(args: argparse.Namespace, console: Console) -> int:
    if getattr(args, "bench_command", None) == "compare":
        return run_compare(args, console)
    check_run_args(args)
    section = run_benchmark(config_from_args(args), console)
    _write(section, args.format, args.output, console)
    return ExitCode.OK

"""One whole benchmark run: categories, cold start, concurrency, crossover, TCO.

`run_benchmark(config, console)` is what `offgrid bench` and `offgrid demo` call; it
returns the report's benchmark section (auditor.bench.results) and writes nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from rich.progress import Progress, TaskID

from auditor.bench.coldstart import Restarter, SystemdRestarter, measure_cold_start
from auditor.bench.concurrency import run_sweep
from auditor.bench.config import APIS, BenchConfig, make_client, route_for
from auditor.bench.crossover import CloudRange, load_cloud
from auditor.bench.decisions import crossover_section
from auditor.bench.endpoint import check_endpoint, is_loopback, split_endpoint
from auditor.bench.interface import RequestResult
from auditor.bench.offload import read_offload
from auditor.bench.ollama import ROUTES as OLLAMA_ROUTES
from auditor.bench.openai import ROUTES as OPENAI_ROUTES
from auditor.bench.results import BenchmarkSection, CategoryResult, GpuInfo, Level, Offload
from auditor.bench.runner import CategoryRun, run_category
from auditor.bench.section import RunFacts, benchmark_section, category_section
from auditor.bench.stats import METHODS
from auditor.bench.suite import Category, Suite, load_suite
from auditor.bench.tco import Prices, load_prices, tco_section
from auditor.console import Console
from auditor.errors import UsageError


def validate(config: BenchConfig) -> None:
    if config.api not in APIS:
        raise UsageError(f"--api must be one of {', '.join(APIS)}")
    modes = tuple(OLLAMA_ROUTES if config.api == "ollama" else OPENAI_ROUTES)
    if config.effective_mode not in modes:
        raise UsageError(f"--mode for --api {config.api} is one of {', '.join(modes)}")
    if config.runs < 1 or config.warmup < 0:
        raise UsageError("--runs must be at least 1 and --warmup at least 0")
    if not 0.0 <= config.failure_threshold <= 1.0:
        raise UsageError("--failure-threshold is a fraction between 0 and 1")
    if any(level < 1 for level in config.concurrency):
        raise UsageError("--concurrency levels must be positive integers")
    if config.timeout_s <= 0:
        raise UsageError("--timeout must be positive")
    if config.percentile_method not in METHODS:
        raise UsageError(f"percentile method must be one of {', '.join(METHODS)}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _run_categories(
    config: BenchConfig, categories: tuple[Category, ...], console: Console
) -> list[CategoryRun]:
    runs: list[CategoryRun] = []
    client = make_client(config)  # one keep-alive session for the whole run
    try:
        with console.progress() as progress:
            for category in categories:
                task = progress.add_task(
                    f"{category.name} ({config.warmup} warm-up)", total=config.runs
                )
                runs.append(run_category(client, category, config, _advancer(progress, task)))
                _report(console, category_section(runs[-1], config.percentile_method))
    finally:
        client.close()
    return runs


def _advancer(progress: Progress, task: TaskID) -> Callable[[RequestResult], None]:
    def advance(_result: RequestResult) -> None:
        progress.advance(task)

    return advance


def _report(console: Console, category: CategoryResult) -> None:
    ttft, tps, tokens = category.ttft_ms, category.decode_tps, category.output_tokens
    console.info(
        f"{category.name}: {category.requests - category.failures}/{category.requests} ok"
        + (f", TTFT median {ttft.median:.0f} ms" if ttft else "")
        + (f", {tps.median:.1f} tok/s" if tps else ", no token count")
        + (f", {tokens.median:.0f} tokens median" if tokens else "")
    )


def _concurrency(config: BenchConfig, suite: Suite, console: Console) -> tuple[Level, ...]:
    if not config.concurrency:
        return ()
    category = suite.category(config.concurrency_category)
    with console.progress() as progress:
        task = progress.add_task(f"concurrency ({category.name})", total=len(config.concurrency))
        return run_sweep(
            config.concurrency,
            category,
            config,
            lambda: make_client(config),
            lambda _users: progress.advance(task),
        )


def _inputs(config: BenchConfig) -> tuple[CloudRange | None, Prices | None]:
    cloud = load_cloud(config.cloud_reference) if config.cloud_reference else None
    prices = load_prices(config.prices) if config.prices else None
    return cloud, prices


def _analysis(
    section: BenchmarkSection, cloud: CloudRange | None, prices: Prices | None, loopback: bool
) -> BenchmarkSection:
    crossover = None
    local_categories = None
    if cloud is not None:
        crossover = crossover_section(section.categories, cloud, section.concurrency, loopback)
        local_categories = [
            row.category
            for row in crossover.decision_matrix
            if row.category and row.recommendation == "Local"
        ]
    tco = tco_section(prices, local_categories) if prices is not None else None
    return replace(section, crossover=crossover, tco=tco)


def run_benchmark(
    config: BenchConfig, console: Console, restarter: Restarter | None = None
) -> BenchmarkSection:
    validate(config)
    addresses = check_endpoint(config.endpoint, config.allow_remote)
    suite = load_suite()
    categories = suite.select(config.categories)
    cloud, prices = _inputs(config)  # bad input fails before any request is sent
    if restarter is None and config.restart_unit:
        restarter = SystemdRestarter(unit=config.restart_unit)
    started = _now()
    runs = _run_categories(config, categories, console)
    local = all(is_loopback(a) for a in addresses)
    gpu, offload = _offload(config, local, console)  # while the model is still loaded
    cold_start = None
    if config.cold_start:
        console.info("measuring cold start …")
        cold_start = measure_cold_start(config, categories[0], restarter)
    concurrency = _concurrency(config, suite, console)
    facts = RunFacts(
        endpoint_addresses=tuple(addresses),
        route=route_for(config),
        started_at=started,
        finished_at=_now(),
        cold_start=cold_start,
        concurrency=concurrency,
    )
    section = benchmark_section(config, suite, runs, facts)
    section = _analysis(section, cloud, prices, local)
    return replace(section, gpu=gpu, offload=offload, notes=notes(section))


def _offload(config: BenchConfig, local: bool, console: Console) -> tuple[GpuInfo | None, Offload]:
    """The machine's GPUs and the model's share on them, said on the terminal too."""
    _host, port = split_endpoint(config.endpoint)
    gpu, offload = read_offload(config.api, config.endpoint, port, config.model, local)
    console.info(f"GPU offload: {offload.summary}")
    if offload.warning:
        console.warning(offload.warning)
    return gpu, offload


def notes(section: BenchmarkSection) -> tuple[str, ...]:
    found: list[str] = []
    sources = {source for c in section.categories for source in c.token_sources}
    if "chunks" in sources:
        found.append(
            "the engine's stream carried no token count; output tokens are its text chunks "
            "(a lower bound, exact for ASCII output; see samples.output_tokens_max), so "
            "TPOT errs high and tok/s low by at most that bound"
        )
    if "client-retokenized" in sources:
        found.append(
            "the engine's stream carried no token count; output tokens were re-counted "
            "by the same server's tokenizer endpoint after each timed request (approximate)"
        )
    if "none" in sources:
        found.append("some requests have no server token count: TPOT and tok/s omit them")
    if not section.settings.nonce:
        found.append("nonce disabled: repeated prompts may be served from a prompt/prefix cache")
    return tuple(found)

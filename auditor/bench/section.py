"""The benchmark section of the report, built as records (auditor.bench.results) from
the measured runs; its JSON form is described by auditor/data/benchmark.schema.json
(bump SECTION_SCHEMA when the shape changes)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from auditor.bench.config import BenchConfig
from auditor.bench.interface import TOKEN_SOURCE_ERRORS, RequestResult, ServerTimings
from auditor.bench.results import (
    SECTION_SCHEMA,
    Access,
    BenchmarkSection,
    CategoryResult,
    ColdStart,
    Level,
    Samples,
    ServerFigures,
    Settings,
    SuiteRef,
)
from auditor.bench.runner import CategoryRun
from auditor.bench.stats import DESCRIPTIONS, summarize
from auditor.bench.suite import Suite

__all__ = ["SECTION_SCHEMA", "RunFacts", "benchmark_section", "category_section"]

TTFT_DEFINITION = (
    "time from sending the request to the arrival of the first streamed chunk that carries "
    "generated text; a role-only chunk is not a token"
)
OUTPUT_COUNT_POLICY = (
    "output tokens as counted by the server where the stream carries a count (OpenAI usage "
    "with stream_options.include_usage, Ollama eval_count, llama.cpp timings); for "
    "llama-cpp-python, whose streams carry none, the number of text chunks (one token each "
    "unless tokens share a UTF-8 character); for another server without a count, its "
    "tokenizer endpoint re-counts the generated text; otherwise null. Each request names "
    "its source; token_count_errors gives each source's known error"
)


WARMUP_PROMPTS = (
    "each warm-up sends its own first line, so no measured prompt shares a cached prefix "
    "with a warm-up"
)


def _values(results: Sequence[RequestResult], attr: str) -> list[float]:
    return [v for v in (getattr(r, attr) for r in results) if v is not None]


def _timing_values(timings: Sequence[ServerTimings], attr: str) -> list[float]:
    return [float(v) for v in (getattr(t, attr) for t in timings) if v is not None]


def server_figures(results: Sequence[RequestResult], method: str) -> ServerFigures | None:
    timings = [r.server for r in results if r.server is not None]
    if not timings:
        return None

    def pick(attr: str) -> list[float]:
        return _timing_values(timings, attr)

    return ServerFigures(
        source=timings[0].source,
        requests=len(timings),
        prompt_eval_ms=summarize(pick("prompt_eval_ms"), method),
        eval_ms=summarize(pick("eval_ms"), method),
        load_ms=summarize(pick("load_ms"), method),
        total_ms=summarize(pick("total_ms"), method),
        decode_tps=summarize(pick("decode_tps"), method),
        prompt_tokens=summarize(pick("prompt_tokens"), method),
    )


def _samples(run: CategoryRun) -> Samples:
    results = run.results
    return Samples(
        prompt_ids=run.prompt_ids,
        ok=tuple(r.ok for r in results),
        ttft_ms=tuple(r.ttft_ms for r in results),
        total_ms=tuple(r.total_ms for r in results),
        output_tokens=tuple(r.output_tokens for r in results),
        output_tokens_max=tuple(r.output_tokens_max for r in results),
        token_sources=tuple(str(r.token_source) if r.token_source else None for r in results),
        finish_reasons=tuple(r.finish_reason for r in results),
    )


def category_section(run: CategoryRun, method: str) -> CategoryResult:
    ok = run.ok_results
    sources = Counter(str(r.token_source) if r.token_source else "none" for r in ok)
    itl = [gap for r in ok for gap in r.itl_ms]
    return CategoryResult(
        name=run.category.name,
        title=run.category.title,
        target_tokens=run.category.target_tokens,
        max_tokens=run.category.max_tokens,
        requests=len(run.results),
        failures=run.failures,
        errors=tuple(sorted({r.error for r in run.results if r.error})[:5]),
        ttft_ms=summarize(_values(ok, "ttft_ms"), method),
        total_ms=summarize(_values(ok, "total_ms"), method),
        tpot_ms=summarize(_values(ok, "tpot_ms"), method),
        itl_ms=summarize(itl, method),
        decode_tps=summarize(_values(ok, "decode_tps"), method),
        output_tokens=summarize([float(v) for v in _values(ok, "output_tokens")], method),
        token_sources=dict(sorted(sources.items())),
        output_tokens_exact=sum(1 for r in ok if r.count_exact),
        stopped_at_max_tokens=sum(1 for r in ok if r.finish_reason == "length"),
        server=server_figures(ok, method),
        samples=_samples(run),
    )


def settings_section(config: BenchConfig) -> Settings:
    return Settings(
        runs=config.runs,
        warmup=config.warmup,
        nonce=config.nonce,
        temperature=config.temperature,
        seed=config.seed,
        percentile_method=config.percentile_method,
        percentile_method_description=DESCRIPTIONS[config.percentile_method],
        connection="keep-alive",
        failure_threshold=config.failure_threshold,
        timeout_s=config.timeout_s,
        timer="time.perf_counter_ns (monotonic)",
        ttft_definition=TTFT_DEFINITION,
        token_count=OUTPUT_COUNT_POLICY,
        token_count_errors={str(k): v for k, v in TOKEN_SOURCE_ERRORS.items()},
        server_tokenizer_fallback=config.retokenize,
        warmup_prompts=WARMUP_PROMPTS,
    )


@dataclass(frozen=True)
class RunFacts:
    """What the run established beside the categories."""

    endpoint_addresses: tuple[str, ...]
    route: str
    started_at: str
    finished_at: str
    cold_start: ColdStart | None = None
    concurrency: tuple[Level, ...] = ()


def access_section(config: BenchConfig) -> Access | None:
    """Present when a credential was sent: the run completed, so the gateway took it."""
    if config.api_key is None:
        return None
    return Access(
        via="authenticated gateway",
        scheme="bearer",
        credential_source=config.credential_source or "file",
        concurrency_view="team" if config.concurrency else None,
    )


def benchmark_section(
    config: BenchConfig, suite: Suite, runs: Sequence[CategoryRun], facts: RunFacts
) -> BenchmarkSection:
    """The section before analysis: crossover, TCO and notes are added by the caller."""
    return BenchmarkSection(
        schema=SECTION_SCHEMA,
        suite=SuiteRef(suite.name, suite.version),
        endpoint=config.endpoint,
        endpoint_addresses=facts.endpoint_addresses,
        api=config.api,
        route=facts.route,
        model=config.model,
        started_at=facts.started_at,
        finished_at=facts.finished_at,
        settings=settings_section(config),
        categories=tuple(category_section(run, config.percentile_method) for run in runs),
        cold_start=facts.cold_start,
        concurrency=facts.concurrency,
        crossover=None,
        tco=None,
        access=access_section(config),
    )

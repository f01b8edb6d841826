"""The benchmark section as frozen records, from measurement to renderer.

`BenchmarkSection` is what `run_benchmark` returns, what `Report.benchmark` holds and
what every renderer reads. It becomes JSON only at the report's edge
(auditor.report.bench_json), in the shape auditor/data/benchmark.schema.json describes:
field names are the JSON keys, a field whose default is None is left out of the JSON
when it is None, and every other field is always written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SECTION_SCHEMA = "offgrid-benchmark/1"


@dataclass(frozen=True)
class Summary:
    """median, p95, p99, mean, min, max of `count` values (method in settings)."""

    median: float
    p95: float
    p99: float
    mean: float
    min: float
    max: float
    count: int


@dataclass(frozen=True)
class ServerFigures:
    """The engine's own figures for a category's successful requests, in ms."""

    source: str  # "ollama" or "llama.cpp"
    requests: int | None = None
    prompt_eval_ms: Summary | None = None
    eval_ms: Summary | None = None
    load_ms: Summary | None = None
    total_ms: Summary | None = None
    decode_tps: Summary | None = None
    prompt_tokens: Summary | None = None


@dataclass(frozen=True)
class Samples:
    """One entry per measured request, in the order they were sent."""

    prompt_ids: tuple[str, ...] = ()
    ok: tuple[bool, ...] = ()
    ttft_ms: tuple[float | None, ...] = ()
    total_ms: tuple[float | None, ...] = ()
    output_tokens: tuple[int | None, ...] = ()
    output_tokens_max: tuple[int | None, ...] = ()  # upper bound where the count is not exact
    token_sources: tuple[str | None, ...] = ()
    finish_reasons: tuple[str | None, ...] = ()


@dataclass(frozen=True)
class CategoryResult:
    name: str
    target_tokens: tuple[int, int]
    requests: int
    failures: int
    ttft_ms: Summary | None
    total_ms: Summary | None
    tpot_ms: Summary | None
    itl_ms: Summary | None
    decode_tps: Summary | None
    output_tokens: Summary | None
    server: ServerFigures | None
    title: str | None = None
    max_tokens: int | None = None
    errors: tuple[str, ...] = ()
    token_sources: Mapping[str, int] = field(default_factory=dict)  # requests per source
    output_tokens_exact: int | None = None  # requests whose count is exact
    stopped_at_max_tokens: int | None = None  # requests the server ended for length
    samples: Samples | None = None


@dataclass(frozen=True)
class Settings:
    runs: int
    warmup: int
    nonce: bool
    temperature: float | None
    seed: int | None
    percentile_method: str
    connection: str
    percentile_method_description: str | None = None
    failure_threshold: float | None = None
    timeout_s: float | None = None
    timer: str | None = None
    ttft_definition: str | None = None
    token_count: str | None = None
    token_count_errors: Mapping[str, str] = field(default_factory=dict)
    server_tokenizer_fallback: bool | None = None
    warmup_prompts: str | None = None


@dataclass(frozen=True)
class RequestFigures:
    """One unaggregated request (the cold start's first one)."""

    ok: bool
    error: str | None
    ttft_ms: float | None
    total_ms: float | None
    output_tokens: int | None
    server_load_ms: float | None = None


@dataclass(frozen=True)
class ColdStart:
    measured: bool
    method: str | None
    first_request: RequestFigures | None
    reason: str | None  # why nothing was measured
    unload_confirmed: bool | None = None
    restart_to_ready_ms: float | None = None
    restart_to_first_token_ms: float | None = None


@dataclass(frozen=True)
class Level:
    """One concurrency level of the sweep."""

    users: int
    requests: int
    failures: int
    throughput_tps: float | None
    ttft_ms: Summary | None
    total_ms: Summary | None
    wall_s: float | None = None
    requests_per_s: float | None = None
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Range:
    low: float
    high: float


@dataclass(frozen=True)
class LocalFigures:
    """The local side of a crossover model and what its figures were taken from."""

    ttft_ms: float
    decode_tps: float
    basis: str | None = None


@dataclass(frozen=True)
class CloudFigures:
    label: str
    ttft_ms: Range
    decode_tps: Range
    source: str | None = None


@dataclass(frozen=True)
class Scenarios:
    """Crossover output length against the cloud's best, typical and worst corner."""

    best: float | None = None
    typical: float | None = None
    worst: float | None = None


@dataclass(frozen=True)
class RowFigures:
    """The numbers a decision-matrix row was computed from (absent: not used by it)."""

    local_ttft_ms: float | None = None
    local_decode_tps: float | None = None
    local_total_ms: tuple[float, float] | None = None  # at the bottom and top of the range
    cloud_total_ms: tuple[float, float] | None = None
    crossover_tokens: float | None = None
    peak_throughput_tps: float | None = None
    per_user_tps: float | None = None


@dataclass(frozen=True)
class DecisionRow:
    use_case: str
    recommendation: str | None  # Local, Cloud, Hybrid; None when nothing was measured
    rationale: str
    category: str | None = None
    figures: RowFigures = field(default_factory=RowFigures)


@dataclass(frozen=True)
class CategoryCrossover:
    """One category's own crossover: its local figures against the cloud's corners."""

    category: str
    target_tokens: tuple[int, int]
    local: LocalFigures
    crossover_tokens: Scenarios


@dataclass(frozen=True)
class Crossover:
    model: str
    local: LocalFigures  # pooled over the categories: the offline row and the chart
    cloud: CloudFigures
    crossover_tokens: Scenarios  # of the pooled local side
    decision_matrix: tuple[DecisionRow, ...]
    local_faster_below_crossover: bool | None = None
    categories: tuple[CategoryCrossover, ...] = ()


@dataclass(frozen=True)
class Hybrid:
    local_categories: tuple[str, ...]
    cloud_cost_avoided_per_month: float
    share_of_cloud_spend_avoided: float | None
    break_even_months: float | None


@dataclass(frozen=True)
class Tco:
    label: str
    currency: str
    hardware_cost: float
    power_cost_per_month: float
    cloud_cost_per_month_total: float
    break_even_months: float | None
    days_per_month: float | None = None
    power_kwh_per_month: float | None = None
    cloud_cost_per_month: Mapping[str, float] = field(default_factory=dict)
    cloud_cost_per_year_total: float | None = None
    hybrid: Hybrid | None = None


@dataclass(frozen=True)
class Access:
    """How the run reached the engine: through a gateway that took its credential.

    Never the credential itself: only that one was sent (as `Authorization: Bearer`) and
    accepted for every request, and where offgrid read it from.
    """

    via: str  # "authenticated gateway"
    scheme: str  # "bearer"
    credential_source: str  # "file" or "environment"
    concurrency_view: str | None = None  # "team": the sweep's users are developers behind it


@dataclass(frozen=True)
class SuiteRef:
    name: str
    version: str


@dataclass(frozen=True)
class BenchmarkSection:
    schema: str
    suite: SuiteRef
    endpoint: str
    api: str
    model: str
    settings: Settings
    categories: tuple[CategoryResult, ...]
    cold_start: ColdStart | None
    concurrency: tuple[Level, ...]
    crossover: Crossover | None
    tco: Tco | None
    endpoint_addresses: tuple[str, ...] = ()
    route: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    notes: tuple[str, ...] = ()
    access: Access | None = None

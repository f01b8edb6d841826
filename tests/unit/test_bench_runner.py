"""Warm-ups, the failure-rate threshold, nonces and max_tokens, with a scripted client."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from auditor.bench.config import BenchConfig
from auditor.bench.interface import GenerationRequest, RequestResult
from auditor.bench.runner import TooManyFailures, WarmupFailed, run_category
from auditor.bench.suite import load_suite
from auditor.exitcodes import ExitCode
from tests.unit.bench_fakes import result


class ScriptedClient:
    """Answers ok or failed in the order given; records every request it got."""

    api = "openai"
    route = "/v1/chat/completions"

    def __init__(self, outcomes: Sequence[bool]) -> None:
        self.outcomes = list(outcomes)
        self.requests: list[GenerationRequest] = []

    def generate(self, request: GenerationRequest) -> RequestResult:
        self.requests.append(request)
        ok = self.outcomes.pop(0) if self.outcomes else True
        return result(10.0, 100.0, 20, ok=ok)

    def close(self) -> None:
        pass


def config(**overrides: object) -> BenchConfig:
    base: dict[str, object] = {
        "endpoint": "http://127.0.0.1:1",
        "api": "openai",
        "model": "m",
        "runs": 10,
        "warmup": 2,
        "failure_threshold": 0.1,
    }
    base.update(overrides)
    return BenchConfig(**base)  # type: ignore[arg-type]


CATEGORY = load_suite().category("function")


def test_failures_at_the_threshold_are_reported_not_fatal() -> None:
    client = ScriptedClient([True, True] + [False] + [True] * 9)  # 2 warm-ups, 1/10 failed
    run = run_category(client, CATEGORY, config())
    assert (len(run.results), run.failures, len(run.ok_results)) == (10, 1, 9)


def test_failures_over_the_threshold_raise_a_clear_incomplete_error() -> None:
    client = ScriptedClient([True, True] + [False, False] + [True] * 8)  # 2/10 = 20 % > 10 %
    with pytest.raises(
        TooManyFailures, match=r"function: 2/10 runs failed \(20% > threshold 10%\)"
    ) as exc:
        run_category(client, CATEGORY, config())
    assert exc.value.exit_code == ExitCode.INCOMPLETE


def test_a_failed_warm_up_aborts_before_any_measured_run() -> None:
    client = ScriptedClient([True, False])
    with pytest.raises(WarmupFailed, match="warm-up 2/2 for function failed"):
        run_category(client, CATEGORY, config())
    assert len(client.requests) == 2


def test_every_request_gets_its_own_nonce_and_the_category_cap() -> None:
    client = ScriptedClient([])
    run_category(client, CATEGORY, config(runs=6, warmup=1))
    measured = client.requests[1:]
    assert len({r.prompt for r in measured}) == 6
    assert all(r.prompt.startswith("[request ") for r in measured)
    assert {r.max_tokens for r in measured} == {CATEGORY.target_tokens[1]}
    assert client.requests[0].max_tokens == CATEGORY.target_tokens[0]  # warm-ups only warm
    assert {(r.temperature, r.seed) for r in measured} == {(0.0, 42)}


def test_without_nonce_the_suite_prompts_go_out_verbatim() -> None:
    client = ScriptedClient([])
    run = run_category(
        client, CATEGORY, config(runs=len(CATEGORY.prompts) + 1, warmup=0, nonce=False)
    )
    texts = [p.text for p in CATEGORY.prompts]
    assert [r.prompt for r in client.requests] == [*texts, texts[0]]
    assert run.prompt_ids[0] == run.prompt_ids[-1] == CATEGORY.prompts[0].id


def test_without_nonce_no_measured_prompt_shares_a_first_line_with_a_warm_up() -> None:
    # A prompt cache reuses a common prefix: a warm-up that sent the first measured
    # prompt made that run's TTFT a cache hit.
    client = ScriptedClient([])
    run_category(client, CATEGORY, config(runs=4, warmup=3, nonce=False))
    warmups, measured = client.requests[:3], client.requests[3:]
    first_lines = {r.prompt.split("\n", 1)[0] for r in measured}
    assert len({r.prompt for r in warmups}) == 3
    assert all(r.prompt.split("\n", 1)[0] not in first_lines for r in warmups)
    assert not {r.prompt for r in warmups} & {r.prompt for r in measured}


def test_suite_is_versioned_and_covers_the_seed_categories() -> None:
    suite = load_suite()
    assert suite.version and suite.name
    targets = {c.name: c.target_tokens for c in suite.categories}
    assert targets == {
        "autocomplete": (20, 80),
        "function": (150, 400),
        "refactor": (200, 500),
        "explain": (300, 800),
    }
    for category in suite.categories:
        assert len(category.prompts) >= 4
        assert len({p.language for p in category.prompts}) >= 3
        assert len({p.id for p in category.prompts}) == len(category.prompts)

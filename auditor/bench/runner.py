"""Warm-ups, measured runs and the failure-rate rule for one category.

Methodology carried over from the seed: warm-up requests are not counted and any
warm-up failure aborts (an engine that cannot answer a warm-up would only produce
misleading figures); measured runs may fail, but if more than `failure_threshold` of
them do, the category — and so the benchmark — is reported as incomplete (exit 3)
rather than summarised from the survivors.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from auditor.bench.config import BenchConfig
from auditor.bench.interface import Client, GenerationRequest, RequestResult
from auditor.bench.suite import Category, Prompt
from auditor.errors import IncompleteError

OnRequest = Callable[[RequestResult], None]


class WarmupFailed(IncompleteError):
    """A warm-up request failed: the engine is not in a state worth measuring."""


class TooManyFailures(IncompleteError):
    """More measured runs failed than the failure-rate threshold allows."""


@dataclass(frozen=True)
class CategoryRun:
    category: Category
    results: tuple[RequestResult, ...]
    prompt_ids: tuple[str, ...]

    @property
    def failures(self) -> int:
        return sum(1 for r in self.results if not r.ok)

    @property
    def ok_results(self) -> tuple[RequestResult, ...]:
        return tuple(r for r in self.results if r.ok)


def with_nonce(text: str, nonce: bool) -> str:
    """Prefix a random request id so no prompt/prefix cache has seen the prompt before."""
    return f"[request {secrets.token_hex(6)}]\n{text}" if nonce else text


def warmup_text(text: str, index: int) -> str:
    """A warm-up's own prompt: its first line differs from every measured prompt's.

    A prompt or prefix cache reuses only a common prefix, so a measured run never finds
    a warm-up's prompt in the cache, with or without nonces.
    """
    return f"[warm-up {index + 1}]\n{text}"


def build_request(
    prompt: Prompt, max_tokens: int, config: BenchConfig, warmup: int | None = None
) -> GenerationRequest:
    """The request for a prompt; `warmup` (its index) gives a warm-up its own prompt."""
    text = prompt.text if warmup is None else warmup_text(prompt.text, warmup)
    return GenerationRequest(
        prompt=with_nonce(text, config.nonce),
        max_tokens=max_tokens,
        temperature=config.temperature,
        seed=config.seed,
    )


def warm_up(client: Client, category: Category, config: BenchConfig) -> None:
    """Unmeasured requests, capped at the bottom of the target range: they only warm."""
    for index in range(config.warmup):
        prompt = category.prompts[index % len(category.prompts)]
        request = build_request(prompt, category.target_tokens[0], config, warmup=index)
        result = client.generate(request)
        if not result.ok:
            raise WarmupFailed(
                f"warm-up {index + 1}/{config.warmup} for {category.name} failed: {result.error}"
            )


def check_failure_rate(category: str, failures: int, runs: int, threshold: float) -> None:
    rate = failures / runs if runs else 0.0
    if rate > threshold:
        raise TooManyFailures(
            f"{category}: {failures}/{runs} runs failed ({rate:.0%} > threshold "
            f"{threshold:.0%}); no figures reported"
        )


def run_category(
    client: Client, category: Category, config: BenchConfig, on_request: OnRequest | None = None
) -> CategoryRun:
    warm_up(client, category, config)
    results: list[RequestResult] = []
    prompt_ids: list[str] = []
    for index in range(config.runs):
        prompt = category.prompts[index % len(category.prompts)]
        result = client.generate(build_request(prompt, category.max_tokens, config))
        results.append(result)
        prompt_ids.append(prompt.id)
        if on_request:
            on_request(result)
    check_failure_rate(
        category.name, sum(1 for r in results if not r.ok), config.runs, config.failure_threshold
    )
    return CategoryRun(category, tuple(results), tuple(prompt_ids))

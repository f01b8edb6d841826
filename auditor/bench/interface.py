"""What every benchmark client provides and the frozen records it returns.

A client speaks one wire protocol (Ollama NDJSON or OpenAI-compatible SSE) over one
keep-alive session and turns a single streamed generation into a `RequestResult`.
Timing is taken with `time.perf_counter_ns` on the client. Every output-token count
names its source (`TokenSource`) and the error that source is known to have
(`TOKEN_SOURCE_ERRORS`): the server's own count where the stream carries one, otherwise
a fallback whose bound is stated.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class TokenSource(StrEnum):
    """Where a request's output-token count came from."""

    SERVER_USAGE = "server-usage"  # OpenAI-compatible usage (stream_options.include_usage)
    SERVER_EVAL_COUNT = "server-eval-count"  # Ollama's final done object, eval_count
    SERVER_TIMINGS = "server-timings"  # llama.cpp llama-server `timings.predicted_n`
    # llama-cpp-python's stream: one chunk per generated token, except that tokens which
    # only together complete a UTF-8 character travel in one chunk.
    CHUNKS = "chunks"
    # The same server's tokenizer endpoint re-counting the text the stream carried.
    CLIENT_RETOKENIZED = "client-retokenized"


TOKEN_SOURCE_ERRORS: dict[TokenSource, str] = {
    TokenSource.SERVER_USAGE: "exact: the server's count of the tokens it generated",
    TokenSource.SERVER_EVAL_COUNT: "exact: the server's count of the tokens it generated",
    TokenSource.SERVER_TIMINGS: "exact: the server's count of the tokens it generated",
    TokenSource.CHUNKS: (
        "lower bound, exact when every chunk is ASCII or empty: a chunk holds one token, "
        "or several that only together complete a UTF-8 character (at most one per "
        "non-ASCII byte); each request's upper bound is in samples.output_tokens_max. Not "
        "counted: tokens of a stop sequence the server cut from the text, which it does "
        "not stream"
    ),
    TokenSource.CLIENT_RETOKENIZED: (
        "approximate, either sign: re-tokenizing generated text is not the inverse of "
        "generation (seen off by up to 3 tokens in 400 on llama-cpp-python)"
    ),
}
EXACT_SOURCES = frozenset(
    {TokenSource.SERVER_USAGE, TokenSource.SERVER_EVAL_COUNT, TokenSource.SERVER_TIMINGS}
)


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    max_tokens: int
    temperature: float | None = 0.0
    seed: int | None = 42


@dataclass(frozen=True)
class ServerTimings:
    """Figures the engine reports about its own work, in milliseconds."""

    source: str  # "ollama" (done object, ns converted) or "llama.cpp" (timings)
    prompt_tokens: int | None = None
    prompt_eval_ms: float | None = None
    eval_tokens: int | None = None
    eval_ms: float | None = None
    load_ms: float | None = None
    total_ms: float | None = None

    @property
    def decode_tps(self) -> float | None:
        if not self.eval_tokens or not self.eval_ms:
            return None
        return self.eval_tokens / self.eval_ms * 1000.0


@dataclass(frozen=True)
class RequestResult:
    """One streamed generation as the client saw it (times in ns from request start)."""

    ok: bool
    total_ns: int
    error: str | None = None
    ttft_ns: int | None = None
    # Arrival time of every content-bearing chunk; the gaps between them are the ITLs.
    chunk_ns: tuple[int, ...] = ()
    output_tokens: int | None = None
    token_source: TokenSource | None = None
    # Upper bound of output_tokens where the source is not exact (None: the count is exact
    # or its bound is unknown; TOKEN_SOURCE_ERRORS says which).
    output_tokens_max: int | None = None
    output_chars: int = 0
    # Stream chunks that carried a text field (even empty) before the final one, and how
    # many more tokens they can hold than one each (non-ASCII bytes beyond the first).
    text_chunks: int = 0
    text_chunk_slack: int = 0
    finish_reason: str | None = None
    server: ServerTimings | None = None

    @property
    def count_exact(self) -> bool:
        """Whether output_tokens is known to be the number of tokens generated."""
        if self.token_source in EXACT_SOURCES:
            return True
        return self.token_source is TokenSource.CHUNKS and self.output_tokens_max == (
            self.output_tokens
        )

    @property
    def ttft_ms(self) -> float | None:
        return None if self.ttft_ns is None else self.ttft_ns / 1e6

    @property
    def total_ms(self) -> float:
        return self.total_ns / 1e6

    @property
    def tpot_ms(self) -> float | None:
        """(total - TTFT) / (tokens - 1), as vLLM defines it; None below two tokens."""
        if self.ttft_ns is None or self.output_tokens is None or self.output_tokens < 2:
            return None
        return (self.total_ns - self.ttft_ns) / (self.output_tokens - 1) / 1e6

    @property
    def decode_tps(self) -> float | None:
        """Client-side decode rate: tokens after the first over the time after the first."""
        tpot = self.tpot_ms
        return None if not tpot else 1000.0 / tpot

    @property
    def itl_ms(self) -> tuple[float, ...]:
        return tuple((b - a) / 1e6 for a, b in zip(self.chunk_ns, self.chunk_ns[1:], strict=False))


class Client(Protocol):
    """One engine protocol over one keep-alive HTTP session."""

    api: str  # "ollama" or "openai"
    route: str  # the path used for generation, e.g. "/api/generate"

    def generate(self, request: GenerationRequest) -> RequestResult: ...

    def close(self) -> None: ...

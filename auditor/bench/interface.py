"""What every benchmark client provides and the frozen records it returns.

A client speaks one wire protocol (Ollama NDJSON or OpenAI-compatible SSE) over one
keep-alive session and turns a single streamed generation into a `RequestResult`.
Timing is taken with `time.perf_counter_ns` on the client; token counts come from the
server only (see `TokenSource`), never from counting chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class TokenSource(StrEnum):
    """Where a request's output-token count came from."""

    EVAL_COUNT = "eval_count"  # Ollama's final done object
    USAGE = "usage"  # OpenAI-compatible usage (stream_options.include_usage)
    TIMINGS = "timings"  # llama.cpp server `timings.predicted_n`
    # The server's own tokenizer endpoint re-counting the text it generated, used only
    # when the stream carried no count (llama-cpp-python's streams have no usage).
    SERVER_TOKENIZER = "server-tokenizer"


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
    output_chars: int = 0
    finish_reason: str | None = None
    server: ServerTimings | None = None

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

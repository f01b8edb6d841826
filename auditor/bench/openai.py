"""OpenAI-compatible streaming: `/v1/chat/completions` and `/v1/completions` over SSE.

Serves llama.cpp (both servers), vLLM, LM Studio, Ollama's `/v1` and cloud providers.
The request asks for `stream_options.include_usage` so the last event carries the
server's token count. A chunk whose delta has only a role carries no token and does not
stop the TTFT clock. llama.cpp's `timings` object is read when present.

When a stream carries no count at all (llama-cpp-python's server never sends usage in a
stream), the client asks the same server's tokenizer endpoint to count the text it
generated, after the timed request; `token_source` says so. Without such an endpoint the
count stays None.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import requests

from auditor.bench.interface import GenerationRequest, RequestResult, ServerTimings, TokenSource
from auditor.bench.transport import (
    TRANSPORT_ERRORS,
    LineEvent,
    StreamCall,
    StreamProtocolError,
    parse_json_line,
    run_stream,
)

ROUTES = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
_DONE = b"[DONE]"


class OpenAIClient:
    api = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        mode: str = "chat",
        timeout_s: float = 300.0,
        retokenize: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.mode = mode
        self.route = ROUTES[mode]
        self.timeout_s = timeout_s
        self.retokenize = retokenize
        self.session = requests.Session()
        self.session.trust_env = False  # a proxy would be an egress path for the prompts
        self._tokenizer_route: str | bool | None = False  # False: not probed yet

    def generate(self, request: GenerationRequest) -> RequestResult:
        call = StreamCall(
            self.session, self.base_url + self.route, self._payload(request), self.timeout_s
        )
        result, text = run_stream(call, parse_sse_line(self.mode))
        if result.ok and result.output_tokens is None and self.retokenize:
            count = self.count_tokens(text)
            if count is not None:
                result = _with_tokens(result, count, TokenSource.SERVER_TOKENIZER)
        return result

    def _payload(self, request: GenerationRequest) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": request.max_tokens,
        }
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        if request.seed is not None:
            payload["seed"] = request.seed
        if self.mode == "chat":
            payload["messages"] = [{"role": "user", "content": request.prompt}]
        else:
            payload["prompt"] = request.prompt
        return payload

    def count_tokens(self, text: str) -> int | None:
        """The server's own tokenizer count for text, or None if it has no such endpoint."""
        if self._tokenizer_route is False:
            self._tokenizer_route = self._probe_tokenizer()
        if not isinstance(self._tokenizer_route, str):
            return None
        with contextlib.suppress(*TRANSPORT_ERRORS, ValueError):
            return _tokenizer_count(self.session, self.base_url, self._tokenizer_route, text)
        return None

    def _probe_tokenizer(self) -> str | None:
        for route in ("/extras/tokenize/count", "/tokenize"):
            with contextlib.suppress(*TRANSPORT_ERRORS, ValueError):
                if _tokenizer_count(self.session, self.base_url, route, "probe") is not None:
                    return route
        return None

    def close(self) -> None:
        self.session.close()


def _tokenizer_count(session: requests.Session, base: str, route: str, text: str) -> int | None:
    # llama-cpp-python: {"input"} -> {"count"}; llama.cpp's llama-server: {"content"} -> {"tokens"}
    body = {"input": text} if route.startswith("/extras") else {"content": text}
    response = session.post(base + route, json=body, timeout=(10.0, 60.0))
    if response.status_code != 200:
        return None
    data = response.json()
    if isinstance(data.get("count"), int):
        return int(data["count"])
    tokens = data.get("tokens")
    return len(tokens) if isinstance(tokens, list) else None


def _with_tokens(result: RequestResult, count: int, source: TokenSource) -> RequestResult:
    return replace(result, output_tokens=count, token_source=source)


def parse_sse_line(mode: str) -> Callable[[bytes], LineEvent | None]:
    """A line parser for one stream (SSE `data:` lines; comments and other fields skipped)."""

    def parse(line: bytes) -> LineEvent | None:
        if not line.startswith(b"data:"):
            if line.startswith((b":", b"event:", b"id:", b"retry:")):
                return None
            raise StreamProtocolError(f"malformed SSE line {line[:60]!r}")
        data = line[5:].strip()
        if data == _DONE:
            return LineEvent(done=True)
        return sse_event(parse_json_line(data), mode)

    return parse


def sse_event(obj: dict[str, Any], mode: str) -> LineEvent:
    choices = obj.get("choices") or []
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    if mode == "chat":
        delta = choice.get("delta") or {}
        content = (delta.get("content") or delta.get("reasoning_content") or "") if delta else ""
    else:
        content = choice.get("text") or ""
    usage = obj.get("usage") if isinstance(obj.get("usage"), dict) else None
    timings = llama_timings(obj.get("timings"))
    tokens, source = _count(usage, timings)
    finish = choice.get("finish_reason")
    return LineEvent(
        content=str(content),
        output_tokens=tokens,
        token_source=source,
        server=timings,
        finish_reason=finish,
        done=bool(finish),
    )


def _count(
    usage: dict[str, Any] | None, timings: ServerTimings | None
) -> tuple[int | None, TokenSource | None]:
    if usage and isinstance(usage.get("completion_tokens"), int):
        return int(usage["completion_tokens"]), TokenSource.USAGE
    if timings and timings.eval_tokens is not None:
        return timings.eval_tokens, TokenSource.TIMINGS
    return None, None


def llama_timings(raw: Any) -> ServerTimings | None:
    """llama.cpp server's `timings` (milliseconds already), if the event has them."""
    if not isinstance(raw, dict):
        return None

    def num(key: str) -> float | None:
        value = raw.get(key)
        return float(value) if isinstance(value, int | float) else None

    prompt_n, predicted_n = num("prompt_n"), num("predicted_n")
    return ServerTimings(
        source="llama.cpp",
        prompt_tokens=None if prompt_n is None else int(prompt_n),
        prompt_eval_ms=num("prompt_ms"),
        eval_tokens=None if predicted_n is None else int(predicted_n),
        eval_ms=num("predicted_ms"),
    )

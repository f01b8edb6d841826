"""OpenAI-compatible streaming: `/v1/chat/completions` and `/v1/completions` over SSE.

Serves llama.cpp (both servers), vLLM, LM Studio, Ollama's `/v1` and cloud providers.
The request asks for `stream_options.include_usage` so the last event carries the
server's token count. A chunk whose delta has only a role carries no token and does not
stop the TTFT clock. llama.cpp's `timings` object is read when present.

llama-cpp-python's server ignores `stream_options` and sends no usage and no timings in
a stream. Its stream sends every generated token in a chunk of its own, except that the
tokens which only together complete a UTF-8 character share one (the end-of-generation
token is never sent). So for that server, recognised once per client by its
`/extras/tokenize/count` endpoint after the first timed request, the count is the number
of text chunks: a lower bound that is exact for ASCII output, with its upper bound kept.
For another server whose stream has no count, the same server's tokenizer re-counts the
generated text after the timed request (approximate); without one the count stays None.
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
LLAMA_CPP_PYTHON_COUNT = "/extras/tokenize/count"
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
        api_key: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.mode = mode
        self.route = ROUTES[mode]
        self.timeout_s = timeout_s
        self.retokenize = retokenize
        self.session = requests.Session()
        self.session.trust_env = False  # a proxy would be an egress path for the prompts
        if api_key is not None:  # a gateway's credential, sent with every request
            self.session.headers["Authorization"] = f"Bearer {api_key}"
        self._tokenizer_route: str | bool | None = False  # False: not probed yet

    def generate(self, request: GenerationRequest) -> RequestResult:
        return self.generate_with_text(request)[0]

    def generate_with_text(self, request: GenerationRequest) -> tuple[RequestResult, str]:
        """The result and the text the stream carried (empty when the request failed)."""
        call = StreamCall(
            self.session, self.base_url + self.route, self._payload(request), self.timeout_s
        )
        result, text = run_stream(call, parse_sse_line(self.mode))
        if result.ok and result.output_tokens is None:
            return self._fallback_count(result, text), text
        return result, text

    def _fallback_count(self, result: RequestResult, text: str) -> RequestResult:
        if self.tokenizer_route() == LLAMA_CPP_PYTHON_COUNT:
            return replace(
                result,
                output_tokens=result.text_chunks,
                output_tokens_max=result.text_chunks + result.text_chunk_slack,
                token_source=TokenSource.CHUNKS,
            )
        count = self.count_tokens(text) if self.retokenize else None
        if count is None:
            return result
        return replace(result, output_tokens=count, token_source=TokenSource.CLIENT_RETOKENIZED)

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

    def tokenizer_route(self) -> str | None:
        """The server's tokenizer endpoint (probed once), or None if it has none."""
        if self._tokenizer_route is False:
            self._tokenizer_route = self._probe_tokenizer()
        return self._tokenizer_route if isinstance(self._tokenizer_route, str) else None

    def count_tokens(self, text: str) -> int | None:
        """The server's own tokenizer count for text, or None if it has no such endpoint."""
        route = self.tokenizer_route()
        if route is None:
            return None
        with contextlib.suppress(*TRANSPORT_ERRORS, ValueError):
            return _tokenizer_count(self.session, self.base_url, route, text)
        return None

    def _probe_tokenizer(self) -> str | None:
        for route in (LLAMA_CPP_PYTHON_COUNT, "/tokenize"):
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
        has_text = isinstance(delta, dict) and isinstance(delta.get("content"), str)
    else:
        content = choice.get("text") or ""
        has_text = isinstance(choice.get("text"), str)
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
        text_chunk=has_text and not finish,
    )


def _count(
    usage: dict[str, Any] | None, timings: ServerTimings | None
) -> tuple[int | None, TokenSource | None]:
    if usage and isinstance(usage.get("completion_tokens"), int):
        return int(usage["completion_tokens"]), TokenSource.SERVER_USAGE
    if timings and timings.eval_tokens is not None:
        return timings.eval_tokens, TokenSource.SERVER_TIMINGS
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

"""Ollama's native API: `/api/generate` and `/api/chat`, streamed as NDJSON.

Every line is one JSON object; content is `response` (generate) or `message.content`
(chat). The last object has `done: true` with the server's counts and durations in
nanoseconds, which become `ServerTimings` in milliseconds.
"""

from __future__ import annotations

from typing import Any

import requests

from auditor.bench.interface import GenerationRequest, RequestResult, ServerTimings, TokenSource
from auditor.bench.transport import LineEvent, StreamCall, parse_json_line, run_stream

ROUTES = {"generate": "/api/generate", "chat": "/api/chat"}


class OllamaClient:
    api = "ollama"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        mode: str = "generate",
        timeout_s: float = 300.0,
        api_key: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.mode = mode
        self.route = ROUTES[mode]
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self.session.trust_env = False  # a proxy would be an egress path for the prompts
        if api_key is not None:  # a gateway's credential, sent with every request
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def generate(self, request: GenerationRequest) -> RequestResult:
        call = StreamCall(
            self.session, self.base_url + self.route, self._payload(request), self.timeout_s
        )
        result, _text = run_stream(call, self._parse)
        return result

    def _payload(self, request: GenerationRequest) -> dict[str, Any]:
        options: dict[str, Any] = {"num_predict": request.max_tokens}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.seed is not None:
            options["seed"] = request.seed
        payload: dict[str, Any] = {"model": self.model, "stream": True, "options": options}
        if self.mode == "chat":
            payload["messages"] = [{"role": "user", "content": request.prompt}]
        else:
            payload["prompt"] = request.prompt
        return payload

    def _parse(self, line: bytes) -> LineEvent:
        obj = parse_json_line(line)
        if self.mode == "chat":
            message = obj.get("message") or {}
            content = (message.get("content") or "") if isinstance(message, dict) else ""
        else:
            content = obj.get("response") or ""
        if not obj.get("done"):
            return LineEvent(content=str(content))
        timings = done_timings(obj)
        return LineEvent(
            content=str(content),
            done=True,
            output_tokens=timings.eval_tokens,
            token_source=TokenSource.SERVER_EVAL_COUNT if timings.eval_tokens is not None else None,
            server=timings,
            finish_reason=obj.get("done_reason"),
        )

    def unload(self) -> None:
        """Ask the server to unload the model now (`keep_alive: 0`)."""
        response = self.session.post(
            self.base_url + "/api/generate",
            json={"model": self.model, "keep_alive": 0},
            timeout=(10.0, self.timeout_s),
        )
        response.raise_for_status()

    def loaded_models(self) -> list[str]:
        response = self.session.get(self.base_url + "/api/ps", timeout=(10.0, 30.0))
        response.raise_for_status()
        return [str(m.get("name") or m.get("model")) for m in response.json().get("models", [])]

    def close(self) -> None:
        self.session.close()


def _ns_to_ms(value: Any) -> float | None:
    return value / 1e6 if isinstance(value, int | float) else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def done_timings(obj: dict[str, Any]) -> ServerTimings:
    """The final done object's figures; durations arrive in nanoseconds."""
    return ServerTimings(
        source="ollama",
        prompt_tokens=_int_or_none(obj.get("prompt_eval_count")),
        prompt_eval_ms=_ns_to_ms(obj.get("prompt_eval_duration")),
        eval_tokens=_int_or_none(obj.get("eval_count")),
        eval_ms=_ns_to_ms(obj.get("eval_duration")),
        load_ms=_ns_to_ms(obj.get("load_duration")),
        total_ms=_ns_to_ms(obj.get("total_duration")),
    )

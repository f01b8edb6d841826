"""The request loop both clients share: POST, stream lines, time content, map failures.

A protocol module supplies only `parse_line(line) -> LineEvent`; everything about
timing and about what counts as a failed request lives here, once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from auditor import safeio
from auditor.bench.interface import RequestResult, ServerTimings, TokenSource
from auditor.bench.stream import timed_lines
from auditor.errors import InputError

# Everything a broken connection, a stall or a truncated body can raise while streaming.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    OSError,  # includes TimeoutError and ConnectionResetError
)


class StreamProtocolError(Exception):
    """The server sent something the protocol does not allow (malformed line, error object)."""


class CredentialRefused(InputError):
    """HTTP 401 or 403 from a gateway: the run stops, a refusal is not a measurement."""


def refusal(status: int, url: str, sent_credential: bool) -> CredentialRefused:
    where = f"HTTP {status} on {urlsplit(url).path or '/'}"
    if status == 401 and not sent_credential:
        return CredentialRefused(
            f"the endpoint requires a credential ({where}); give --api-key-file FILE "
            "or set OFFGRID_API_KEY"
        )
    if status == 401:
        return CredentialRefused(
            f"the gateway refused the credential ({where}): unknown, revoked or expired"
        )
    return CredentialRefused(
        f"the gateway refused the request ({where}): this credential or route is not allowed"
    )


STREAM_ERRORS: tuple[type[BaseException], ...] = (StreamProtocolError, *TRANSPORT_ERRORS)


@dataclass(frozen=True)
class LineEvent:
    content: str = ""
    done: bool = False
    output_tokens: int | None = None
    token_source: TokenSource | None = None
    server: ServerTimings | None = None
    finish_reason: str | None = None
    # The event is a chunk of generated text (its text field present, possibly empty).
    text_chunk: bool = False


def chunk_slack(text: str) -> int:
    """How many tokens beyond one a stream chunk with this text can hold.

    A chunk of ASCII (or no) text holds one token. Several tokens share a chunk only when
    the first ends inside a multi-byte UTF-8 character and each later one carries at
    least one of its continuation bytes, so a chunk holds at most one token per non-ASCII
    byte.
    """
    non_ascii = sum(1 for byte in text.encode("utf-8") if byte >= 0x80)
    return max(0, non_ascii - 1)


@dataclass
class _Accumulator:
    start_ns: int
    chunk_ns: list[int] = field(default_factory=list)
    chars: int = 0
    text: list[str] = field(default_factory=list)
    done: bool = False
    output_tokens: int | None = None
    token_source: TokenSource | None = None
    server: ServerTimings | None = None
    finish_reason: str | None = None
    text_chunks: int = 0
    text_chunk_slack: int = 0

    def apply(self, arrived_ns: int, event: LineEvent) -> None:
        if event.text_chunk:
            self.text_chunks += 1
            self.text_chunk_slack += chunk_slack(event.content)
        if event.content:
            self.chunk_ns.append(arrived_ns - self.start_ns)
            self.chars += len(event.content)
            self.text.append(event.content)
        if event.output_tokens is not None:
            self.output_tokens, self.token_source = event.output_tokens, event.token_source
        self.server = event.server or self.server
        self.finish_reason = event.finish_reason or self.finish_reason
        self.done = self.done or event.done


def parse_json_line(line: bytes) -> dict[str, Any]:
    try:
        obj = safeio.parse_json(line, "stream line")
    except InputError as exc:
        raise StreamProtocolError(f"malformed line {line[:60]!r}: {exc}") from None
    if not isinstance(obj, dict):
        raise StreamProtocolError(f"expected a JSON object, got {line[:60]!r}")
    if obj.get("error"):
        raise StreamProtocolError(f"server error in stream: {str(obj['error'])[:200]}")
    return obj


@dataclass(frozen=True)
class StreamCall:
    session: requests.Session
    url: str
    payload: dict[str, Any]
    timeout_s: float


def run_stream(
    call: StreamCall, parse_line: Callable[[bytes], LineEvent | None]
) -> tuple[RequestResult, str]:
    """Run one streamed request; returns the result and the generated text.

    The request is encoded before the clock starts: JSON encoding and header assembly
    are the harness's work, not the engine's, and would otherwise inflate TTFT.
    """
    prepared = call.session.prepare_request(requests.Request("POST", call.url, json=call.payload))
    acc = _Accumulator(start_ns=time.perf_counter_ns())
    deadline = acc.start_ns + int(call.timeout_s * 1e9)
    try:
        _consume(call, prepared, parse_line, acc, deadline)
    except STREAM_ERRORS as exc:
        return _failed(acc, _describe(exc)), ""
    total = time.perf_counter_ns() - acc.start_ns
    if not acc.done:
        return _failed(acc, "stream ended before the server said it was done"), ""
    if not acc.chunk_ns:
        return _failed(acc, "the server returned no content"), ""
    result = RequestResult(
        ok=True,
        total_ns=total,
        ttft_ns=acc.chunk_ns[0],
        chunk_ns=tuple(acc.chunk_ns),
        output_tokens=acc.output_tokens,
        token_source=acc.token_source,
        output_chars=acc.chars,
        finish_reason=acc.finish_reason,
        server=acc.server,
        text_chunks=acc.text_chunks,
        text_chunk_slack=acc.text_chunk_slack,
    )
    return result, "".join(acc.text)


def _consume(
    call: StreamCall,
    prepared: requests.PreparedRequest,
    parse_line: Callable[[bytes], LineEvent | None],
    acc: _Accumulator,
    deadline: int,
) -> None:
    # Sessions are built with trust_env off, so send() needs no environment merge.
    with call.session.send(prepared, stream=True, timeout=(10.0, call.timeout_s)) as response:
        if response.status_code in (401, 403):
            sent = "Authorization" in call.session.headers
            raise refusal(response.status_code, call.url, sent)
        if response.status_code != 200:
            raise StreamProtocolError(f"HTTP {response.status_code}: {_error_text(response)}")
        response.raw.decode_content = True
        for arrived, line in timed_lines(response.raw, deadline):
            try:
                event = parse_line(line)
            except (TypeError, AttributeError, LookupError, ValueError, ArithmeticError) as exc:
                # a JSON line of the wrong shape (`{"choices": 5}`): the server broke protocol
                raise StreamProtocolError(f"unexpected line {line[:60]!r}: {exc}") from None
            if event is not None:
                acc.apply(arrived, event)


def _failed(acc: _Accumulator, error: str) -> RequestResult:
    return RequestResult(
        ok=False,
        total_ns=time.perf_counter_ns() - acc.start_ns,
        error=error,
        ttft_ns=acc.chunk_ns[0] if acc.chunk_ns else None,
        chunk_ns=tuple(acc.chunk_ns),
    )


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason
    if isinstance(body, dict) and "error" in body:
        error = body["error"]
        return str(error.get("message", error) if isinstance(error, dict) else error)[:200]
    return str(body)[:200]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, StreamProtocolError):
        return str(exc)
    if isinstance(exc, requests.Timeout | TimeoutError | urllib3.exceptions.ReadTimeoutError):
        return f"timed out: {exc}"
    return f"{type(exc).__name__}: {exc}"[:300]

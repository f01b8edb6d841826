"""The NDJSON and SSE clients and the line splitter, on recorded streams over loopback."""

from __future__ import annotations

import time

import pytest

from auditor.bench.interface import GenerationRequest, TokenSource
from auditor.bench.ollama import OllamaClient
from auditor.bench.openai import OpenAIClient
from auditor.bench.stream import LineSplitter, timed_lines
from tests.unit.bench_fakes import Script, recorded, serving

REQUEST = GenerationRequest(prompt="def add(a, b):", max_tokens=8)


def test_splitter_hands_on_every_complete_line_and_keeps_the_partial_one() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b'{"a": 1}\n{"b"') == [b'{"a": 1}']
    assert splitter.feed(b": 2}\r\n\n") == [b'{"b": 2}', b""]
    assert splitter.feed(b"tail") == []
    assert splitter.flush() == b"tail"


class _Body:
    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces, self.reads = pieces, 0

    def read1(self, amt: int | None = None) -> bytes:
        self.reads += 1
        return self.pieces.pop(0) if self.pieces else b""


def test_timed_lines_yields_a_line_in_the_same_read_that_completed_it() -> None:
    body = _Body([b"data: one\n", b"data: tw", b"o\n", b"last"])
    seen = []
    for _, line in timed_lines(body):
        seen.append((line, body.reads))
    assert seen == [(b"data: one", 1), (b"data: two", 3), (b"last", 5)]


def test_role_only_first_chunk_does_not_stop_the_ttft_clock() -> None:
    # The role chunk arrives at once, the first content 150 ms later: TTFT is the latter.
    script = recorded("llamacpp_chat.sse")
    pieces = list(script.pieces)
    pieces[4] = (0.15, pieces[4][1])  # pause before the first content line ("Here")
    script.pieces = pieces
    with serving(script) as url:
        client = OpenAIClient(url, "smol", retokenize=False)
        result = client.generate(REQUEST)
        client.close()
    assert result.ok, result.error
    assert result.ttft_ms is not None and result.ttft_ms >= 150
    assert len(result.chunk_ns) == 3  # "Here", " is", " code"
    assert result.output_tokens is None and result.token_source is None  # no usage: no guess
    assert result.finish_reason == "length"


def test_usage_wins_and_llamacpp_timings_are_kept_beside_it() -> None:
    with serving(recorded("usage_chat.sse")) as url:
        client = OpenAIClient(url, "m")
        result = client.generate(REQUEST)
        client.close()
    assert result.ok, result.error
    assert (result.output_tokens, result.token_source) == (2, TokenSource.SERVER_USAGE)
    assert len(result.chunk_ns) == 2  # the role chunk with empty content is no token
    assert result.server is not None and result.server.source == "llama.cpp"
    assert result.server.eval_ms == 18.0 and result.server.prompt_tokens == 12


@pytest.mark.parametrize(
    ("name", "mode"), [("ollama_generate.ndjson", "generate"), ("ollama_chat.ndjson", "chat")]
)
def test_ollama_done_object_durations_are_nanoseconds(name: str, mode: str) -> None:
    script = recorded(name)
    script.content_type = "application/x-ndjson"
    with serving(script) as url:
        client = OllamaClient(url, "m", mode=mode)
        result = client.generate(REQUEST)
        client.close()
    assert result.ok, result.error
    assert len(result.chunk_ns) == 2  # an empty "response" is not a token
    assert result.token_source == TokenSource.SERVER_EVAL_COUNT and result.output_tokens == 2
    server = result.server
    assert server is not None
    if mode == "generate":
        assert (server.load_ms, server.prompt_eval_ms, server.eval_ms) == (3020.0, 130.079, 40.0)
        assert server.decode_tps == pytest.approx(50.0)
    else:
        assert server.eval_ms == 100.0 and server.total_ms == 200.0


def test_malformed_line_fails_the_request() -> None:
    script = recorded("ollama_generate.ndjson")
    script.pieces = [*script.pieces[:2], (0.0, b'{"response": "x", \n'), *script.pieces[2:]]
    with serving(script) as url:
        result = OllamaClient(url, "m").generate(REQUEST)
    assert not result.ok and "malformed" in (result.error or "")


def test_stream_without_done_fails_the_request() -> None:
    script = recorded("ollama_generate.ndjson")
    script.pieces = script.pieces[:-1]
    with serving(script) as url:
        result = OllamaClient(url, "m").generate(REQUEST)
    assert not result.ok and "done" in (result.error or "")


def test_http_error_status_reports_the_servers_message() -> None:
    script = Script(
        [(0.0, b'{"error": "model is overloaded"}')],
        status=500,
        chunked=False,
        content_type="application/json",
    )
    with serving(script) as url:
        result = OpenAIClient(url, "m").generate(REQUEST)
    assert not result.ok and result.error == "HTTP 500: model is overloaded"


def test_close_delimited_body_is_not_held_back() -> None:
    # No chunking, no length: a reader that waits for a full block or EOF would only see
    # the first line after the 400 ms pause.
    lines = recorded("usage_chat.sse").pieces
    script = Script(
        [(0.0, b"".join(d for _, d in lines[:4])), (0.4, b"".join(d for _, d in lines[4:]))],
        chunked=False,
    )
    with serving(script) as url:
        start = time.perf_counter()
        result = OpenAIClient(url, "m").generate(REQUEST)
    assert result.ok, result.error
    assert result.ttft_ms is not None and result.ttft_ms < 300
    assert time.perf_counter() - start >= 0.4


LLAMA_CPP_PYTHON = {"/extras/tokenize/count": b'{"count": 1}'}


def test_llama_cpp_python_streams_are_counted_by_their_text_chunks() -> None:
    # That server sends no usage; every text chunk (an empty one too) is one token, or
    # several when they share a UTF-8 character: " caf\u00e9" may be two tokens.
    script = recorded("llamacpp_python_completions.sse")
    script.json_routes = LLAMA_CPP_PYTHON
    with serving(script) as url:
        client = OpenAIClient(url, "smol", mode="completions")
        result = client.generate(REQUEST)
        client.close()
    assert result.ok, result.error
    assert (result.output_tokens, result.output_tokens_max) == (4, 5)
    assert result.token_source == TokenSource.CHUNKS and not result.count_exact
    assert len(result.chunk_ns) == 3 and result.finish_reason == "length"


def test_an_ascii_llama_cpp_python_chat_stream_has_an_exact_count() -> None:
    script = recorded("llamacpp_chat.sse")
    script.json_routes = LLAMA_CPP_PYTHON
    with serving(script) as url:
        client = OpenAIClient(url, "smol", retokenize=False)
        result = client.generate(REQUEST)
        client.close()
    assert result.ok, result.error
    assert (result.output_tokens, result.output_tokens_max) == (3, 3)  # no role-only chunk
    assert result.token_source == TokenSource.CHUNKS and result.count_exact


def test_another_server_without_a_count_is_re_counted_by_its_tokenizer() -> None:
    script = recorded("llamacpp_chat.sse")
    script.json_routes = {"/tokenize": b'{"tokens": [1, 2, 3, 4]}'}
    with serving(script) as url:
        client = OpenAIClient(url, "m")
        result = client.generate(REQUEST)
        client.close()
    assert (result.output_tokens, result.token_source) == (4, TokenSource.CLIENT_RETOKENIZED)
    assert result.output_tokens_max is None and not result.count_exact

"""The gateway as the offgrid_gateway role renders it, served by Debian's nginx as an
unprivileged user, in front of the real llama.cpp server on loopback: route allow-list,
bearer tokens on the TLS team listener, revocation by re-rendering, the body limit, per-user
rate limits, unbuffered streams and an access log without bodies or credentials."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from auditor.embedded.llamacpp import RunningEngine
from tests.gateway_support import Gateway, gateway, make_tls, new_token, store_entry, write_store

pytestmark = [
    pytest.mark.root,
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("nginx") is None, reason="needs nginx (make apt)"),
]
MODEL = "smollm2-135m-instruct"
BODY_MARKER = "offgrid-body-marker-5f3a"


@pytest.fixture(scope="module")
def tokens() -> dict[str, tuple[str, str]]:
    return {user: new_token() for user in ("alice", "bob", "carol")}


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory,
    llama_engine: RunningEngine,
    tokens: dict[str, tuple[str, str]],
) -> Iterator[Gateway]:
    secrets_dir = tmp_path_factory.mktemp("gateway-secrets")
    cert, key = make_tls(secrets_dir)
    store = secrets_dir / "tokens.json"
    write_store(store, [store_entry(tid, user, tok) for user, (tid, tok) in tokens.items()])
    with gateway(
        f"127.0.0.1:{llama_engine.port}",
        offgrid_gateway_team_enabled=True,
        offgrid_gateway_tls_certificate=str(cert),
        offgrid_gateway_tls_key=str(key),
        offgrid_gateway_token_store=str(store),
        offgrid_gateway_rate_per_minute=60,
        offgrid_gateway_rate_burst=5,
    ) as running:
        yield running


def _ca(gw: Gateway) -> str:
    return str(gw.variables["offgrid_gateway_tls_certificate"])


def _team(gw: Gateway, path: str, token: str | None, **kwargs: Any) -> requests.Response:
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    method = "POST" if "json" in kwargs or "data" in kwargs else "GET"
    with requests.Session() as session:
        session.trust_env = False
        return session.request(
            method,
            gw.team_url + path,
            headers=headers,
            verify=_ca(gw),
            timeout=120,
            **kwargs,
        )


def _local(gw: Gateway, path: str, **kwargs: Any) -> requests.Response:
    method = "POST" if "json" in kwargs or "data" in kwargs else "GET"
    with requests.Session() as session:
        session.trust_env = False
        return session.request(method, gw.local_url + path, timeout=120, **kwargs)


def _chat(content: str) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 24,
        "stream": True,
        "temperature": 0,
    }


def test_team_listener_refuses_no_token_and_a_wrong_one(
    gw: Gateway, tokens: dict[str, tuple[str, str]]
) -> None:
    assert _team(gw, "/v1/models", None).status_code == 401
    _, alice = tokens["alice"]
    forged = alice[:-4] + ("AAAA" if not alice.endswith("AAAA") else "BBBB")
    assert _team(gw, "/v1/models", forged).status_code == 401
    assert _team(gw, "/v1/models", "not-a-token").status_code == 401
    answer = _team(gw, "/v1/models", None)
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_valid_token_streams_a_completion_unbuffered(
    gw: Gateway, tokens: dict[str, tuple[str, str]]
) -> None:
    _, alice = tokens["alice"]
    headers = {"Authorization": f"Bearer {alice}"}
    with requests.Session() as session:
        session.trust_env = False
        with session.post(
            gw.team_url + "/v1/chat/completions", json=_chat("Count to ten."), headers=headers,
            verify=_ca(gw), timeout=120, stream=True,
        ) as answer:  # fmt: skip
            assert answer.status_code == 200, answer.text
            assert "content-length" not in answer.headers
            chunks = [chunk for chunk in answer.iter_content(chunk_size=None) if chunk]
    text = b"".join(chunks).decode()
    assert text.rstrip().endswith("data: [DONE]")
    events = [line for line in text.splitlines() if line.startswith("data: {")]
    assert len(events) > 2
    # Buffered proxying would deliver a short answer in one piece; each event passes on its own.
    assert len(chunks) > 2


def test_management_and_debug_routes_get_403_with_a_valid_token(
    gw: Gateway, tokens: dict[str, tuple[str, str]]
) -> None:
    _, alice = tokens["alice"]
    for path in ("/api/pull", "/api/push", "/api/create", "/api/delete", "/api/copy"):
        assert _team(gw, path, alice, json={"model": MODEL}).status_code == 403, path
    for path in ("/debug/pprof/", "/debug/pprof/heap", "/api/blobs/sha256:00"):
        assert _team(gw, path, alice).status_code == 403, path
        assert _local(gw, path).status_code == 403, path
    assert _local(gw, "/api/pull", json={"model": MODEL}).status_code == 403


@pytest.mark.parametrize(
    "path",
    ["/v1/%6dodels", "/v1/models/../../api/pull", "//v1/models", "/v1/models/", "/V1/models"],
)
def test_other_spellings_of_a_route_are_refused(gw: Gateway, path: str) -> None:
    with requests.Session() as session:
        session.trust_env = False
        prepared = requests.Request("GET", gw.local_url + "/").prepare()
        prepared.url = gw.local_url + path  # sent exactly as written, no normalisation
        assert session.send(prepared, timeout=30).status_code == 403


def test_local_listener_serves_inference_without_a_credential(gw: Gateway) -> None:
    answer = _local(gw, "/v1/chat/completions", json={**_chat("Hi"), "stream": False})
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] is not None
    assert answer.headers["X-Offgrid-Gateway"] == "1"


def test_body_over_the_limit_gets_413(gw: Gateway, tokens: dict[str, tuple[str, str]]) -> None:
    big = b'{"prompt": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    assert _local(gw, "/v1/completions", data=big).status_code == 413
    _, alice = tokens["alice"]
    assert _team(gw, "/v1/completions", alice, data=big).status_code == 413


def test_rate_limit_is_per_developer(gw: Gateway, tokens: dict[str, tuple[str, str]]) -> None:
    _, carol = tokens["carol"]
    statuses = [_team(gw, "/v1/models", carol).status_code for _ in range(12)]
    assert 429 in statuses and statuses[0] == 200
    _, alice = tokens["alice"]
    assert _team(gw, "/v1/models", alice).status_code == 200


def test_access_log_names_the_developer_and_never_bodies_or_tokens(
    gw: Gateway, tokens: dict[str, tuple[str, str]]
) -> None:
    _, alice = tokens["alice"]
    body = {**_chat(BODY_MARKER), "stream": False}
    assert _team(gw, "/v1/chat/completions", alice, json=body).status_code == 200
    assert _team(gw, "/api/pull", alice, json={"model": BODY_MARKER}).status_code == 403
    fake = "ogk_000000000000_" + "Z" * 43
    assert _team(gw, "/v1/models", fake).status_code == 401
    lines = [json.loads(line) for line in gw.access_log.read_text().splitlines()]
    mine = [(e["user"], e["route"], e["status"]) for e in lines if e["listener"] == "team"]
    assert ("alice", "/v1/chat/completions", 200) in mine
    assert ("alice", "/api/pull", 403) in mine
    assert ("", "/v1/models", 401) in mine
    assert all({"request_bytes", "response_bytes", "request_time"} <= set(e) for e in lines)
    for log in (gw.access_log, gw.log_dir / "error.log"):
        text = log.read_text()
        assert BODY_MARKER not in text
        assert all(token not in text for _, token in tokens.values())
        assert fake not in text and "Bearer" not in text


def test_revoked_token_gets_401_after_the_next_render(
    gw: Gateway, tokens: dict[str, tuple[str, str]]
) -> None:
    _, bob = tokens["bob"]
    assert _team(gw, "/v1/models", bob).status_code == 200
    store = Path(gw.variables["offgrid_gateway_token_store"])
    entries = json.loads(store.read_text())["tokens"]
    bob_id = tokens["bob"][0]
    for entry in entries:
        if entry["id"] == bob_id:
            entry["revoked_at"] = "2026-06-01T00:00:00Z"
    write_store(store, entries)
    gw.render()
    gw.reload()
    assert _team(gw, "/v1/models", bob).status_code == 401
    _, alice = tokens["alice"]
    assert _team(gw, "/v1/models", alice).status_code == 200


def test_a_token_past_its_expiry_is_refused_before_the_next_render(gw: Gateway) -> None:
    """njs checks each entry's expiry per request: no play needed for an expired token."""
    token_map = gw.conf_dir / "tokens.map"
    original = token_map.read_text()
    (_, past), (_, future) = new_token(), new_token()
    lines = [
        f'{store_entry("0" * 12, "dora", past)["sha256"]} "dora 2020-01-01T00:00:00Z";',
        f'{store_entry("1" * 12, "erin", future)["sha256"]} "erin 2099-01-01T00:00:00Z";',
    ]
    try:
        token_map.write_text(original + "\n".join(lines) + "\n")
        gw.reload()
        assert _team(gw, "/v1/models", past).status_code == 401
        assert _team(gw, "/v1/models", future).status_code == 200
    finally:
        token_map.write_text(original)
        gw.reload()

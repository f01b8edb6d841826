"""The token store reader of the offgrid_gateway role: only active tokens reach the
workstation, and a store it cannot read exactly is refused rather than half-read."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

FILTER = Path(__file__).resolve().parents[2] / "plugins" / "filter" / "offgrid_gateway.py"
NOW = "2026-06-01T00:00:00Z"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("offgrid_gateway_filter", FILTER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _token(token_id: str, user: str, **dates: str | None) -> dict[str, Any]:
    return {
        "id": token_id, "user": user, "sha256": token_id[0] * 64,
        "issued_at": "2026-01-01T00:00:00Z", "expires_at": dates.get("expires_at"),
        "revoked_at": dates.get("revoked_at"),
    }  # fmt: skip


def _store(*tokens: dict[str, Any], **top: Any) -> str:
    return json.dumps({"schema": "offgrid-gateway-tokens/1", "tokens": list(tokens), **top})


def test_only_active_tokens_are_rendered() -> None:
    text = _store(
        _token("aaaaaaaaaaaa", "alice"),
        _token("bbbbbbbbbbbb", "bob", revoked_at="2026-05-01T00:00:00Z"),
        _token("cccccccccccc", "carol", expires_at="2026-05-31T23:59:59Z"),
        _token("dddddddddddd", "dave", expires_at="2026-07-01T00:00:00Z"),
    )
    active = _module().offgrid_gateway_tokens(text, NOW)
    assert [(t["user"], t["expires"]) for t in active] == [("alice", 0), ("dave", 1782864000)]
    assert active[0]["sha256"] == "a" * 64


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        _store(extra=1),
        json.dumps({"schema": "offgrid-gateway-tokens/2", "tokens": []}),
        _store({**_token("aaaaaaaaaaaa", "alice"), "note": "x"}),
        _store({**_token("aaaaaaaaaaaa", "Alice")}),
        _store({**_token("aaaaaaaaaaaa", "alice"), "sha256": "A" * 64}),
        _store({**_token("aaaaaaaaaaaa", "alice"), "expires_at": "tomorrow"}),
        _store(_token("aaaaaaaaaaaa", "alice"), _token("aaaaaaaaaaaa", "bob")),
    ],
)
def test_a_store_it_cannot_read_exactly_is_refused(text: str) -> None:
    with pytest.raises(AnsibleFilterError):
        _module().offgrid_gateway_tokens(text, NOW)

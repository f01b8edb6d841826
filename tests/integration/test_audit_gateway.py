"""The OG-GW controls against the gateway the role renders, served by real nginx in front of
the real llama.cpp server: every control judged from the auditor's own requests, and each
property broken on purpose in the running gateway fails its control.

The engine here is not sealed (it listens on this namespace's loopback), so OG-GW-06 fails
for the reason it exists; its passing case needs the sealed engine of the booted workstation.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from auditor.checks.gw import (
    access_log_without_bodies,
    certificate_not_expiring,
    debug_routes_unreachable,
    engine_only_through_gateway,
    management_refused_with_credential,
    team_refuses_unauthenticated,
    tls_protocol_floor,
)
from auditor.checks.interface import CheckFn
from auditor.embedded.llamacpp import RunningEngine
from auditor.engine_kind import EngineKind
from auditor.inventory import collect, gateway
from auditor.inventory.interface import AuditOptions, Facts
from auditor.verdicts import Status
from tests.gateway_support import Gateway, make_tls, new_token, store_entry, write_store
from tests.gateway_support import gateway as running_gateway

pytestmark = [
    pytest.mark.root,
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("nginx") is None, reason="needs nginx (make apt)"),
]
CONTROLS: dict[str, CheckFn] = {
    "OG-GW-01": team_refuses_unauthenticated,
    "OG-GW-02": management_refused_with_credential,
    "OG-GW-03": debug_routes_unreachable,
    "OG-GW-04": tls_protocol_floor,
    "OG-GW-05": certificate_not_expiring,
    "OG-GW-06": engine_only_through_gateway,
    "OG-GW-07": access_log_without_bodies,
}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, llama_engine: RunningEngine) -> Iterator[Gateway]:
    secrets_dir = tmp_path_factory.mktemp("audit-gateway")
    cert, key = make_tls(secrets_dir)
    token_id, token = new_token()
    store = secrets_dir / "tokens.json"
    write_store(store, [store_entry(token_id, "alice", token)])
    with running_gateway(
        f"127.0.0.1:{llama_engine.port}",
        offgrid_gateway_team_enabled=True,
        offgrid_gateway_tls_certificate=str(cert),
        offgrid_gateway_tls_key=str(key),
        offgrid_gateway_token_store=str(store),
    ) as running:
        yield running


@pytest.fixture(scope="module")
def base_facts(gw: Gateway, llama_engine: RunningEngine) -> Facts:
    options = AuditOptions(
        engine=EngineKind("llamacpp"), engine_pid=llama_engine.pid,
        gateway=gw.conf_dir / "gateway.json",
    )  # fmt: skip
    return collect.collect(options)


def _judge(facts: Facts, gw: Gateway, llama_engine: RunningEngine) -> dict[str, Status]:
    """Probe the gateway as it runs now and judge every OG-GW control."""
    fresh = gateway.collect(
        gw.conf_dir / "gateway.json", facts.engine, facts.sockets,
        {p.pid: p.name for p in facts.processes}, {llama_engine.port},
    )  # fmt: skip
    judged = dataclasses.replace(facts, gateway=fresh)
    return {cid: fn(judged).status for cid, fn in CONTROLS.items()}


@pytest.fixture
def planted(gw: Gateway) -> Iterator[Callable[[Callable[[str], str]], None]]:
    """Edit the running gateway's nginx.conf and reload it; the original comes back after."""
    conf = gw.conf_dir / "nginx.conf"
    original = conf.read_text()

    def plant(edit: Callable[[str], str]) -> None:
        changed = edit(original)
        assert changed != original, "the planted fault changed nothing"
        conf.write_text(changed)
        gw.reload()

    yield plant
    conf.write_text(original)
    gw.reload()


def test_the_rendered_gateway_passes_and_the_unsealed_engine_fails_og_gw_06(
    base_facts: Facts,
) -> None:
    assert base_facts.gateway is not None and base_facts.gateway.error is None
    judged = {cid: fn(base_facts) for cid, fn in CONTROLS.items()}
    for cid, result in judged.items():
        if cid != "OG-GW-06":
            assert result.status == Status.PASS, (cid, result)
    assert judged["OG-GW-06"].status == Status.FAIL
    assert "engine listener(s) in this namespace" in judged["OG-GW-06"].summary


def _allow(route: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        return text.replace(
            "        default 0;\n", f'        default 0;\n        "~^{route}" 1;\n', 1
        )

    return edit


@pytest.mark.parametrize(
    ("control", "edit"),
    [
        ("OG-GW-01", lambda t: re.sub(r'if \(\$offgrid_user = ""\) \{\s*return 401;\s*\}', "", t)),
        ("OG-GW-02", _allow("POST /api/pull")),
        ("OG-GW-03", _allow("GET /debug/")),
        (
            "OG-GW-04",
            lambda t: re.sub(r"ssl_ciphers [^;]+;", "ssl_ciphers DEFAULT:@SECLEVEL=0;", t).replace(
                "ssl_protocols TLSv1.2 TLSv1.3;", "ssl_protocols TLSv1.1 TLSv1.2 TLSv1.3;"
            ),
        ),
        (
            "OG-GW-07",
            lambda t: t.replace('"route":"$uri",', '"route":"$uri","request":"$request_uri",'),
        ),
    ],
)
def test_each_planted_fault_fails_its_control(
    control: str,
    edit: Callable[[str], str],
    *,
    planted: Callable[[Callable[[str], str]], None],
    base_facts: Facts,
    gw: Gateway,
    llama_engine: RunningEngine,
) -> None:
    planted(edit)
    assert _judge(base_facts, gw, llama_engine)[control] == Status.FAIL


def test_body_logging_fails_og_gw_07(
    planted: Callable[[Callable[[str], str]], None],
    base_facts: Facts,
    gw: Gateway,
    llama_engine: RunningEngine,
) -> None:
    planted(lambda t: t.replace('"route":"$uri",', '"route":"$uri","body":"$request_body",'))
    assert _judge(base_facts, gw, llama_engine)["OG-GW-07"] == Status.FAIL


def test_a_certificate_near_expiry_fails_og_gw_05(
    gw: Gateway, base_facts: Facts, llama_engine: RunningEngine, tmp_path: Path
) -> None:
    tls = gw.conf_dir / "tls"
    saved = {name: (tls / name).read_bytes() for name in ("gateway.crt", "gateway.key")}
    cert, key = make_tls(tmp_path, days=10)
    try:
        (tls / "gateway.crt").write_bytes(cert.read_bytes())
        (tls / "gateway.key").write_bytes(key.read_bytes())
        gw.reload()
        assert _judge(base_facts, gw, llama_engine)["OG-GW-05"] == Status.FAIL
    finally:
        for name, content in saved.items():
            (tls / name).write_bytes(content)
        gw.reload()


def test_an_unreadable_audit_token_is_an_error_not_a_pass(
    gw: Gateway, base_facts: Facts, llama_engine: RunningEngine
) -> None:
    token = gw.conf_dir / "audit.token"
    token.chmod(0o644)
    try:
        judged = _judge(base_facts, gw, llama_engine)
    finally:
        token.chmod(0o600)
    assert judged["OG-GW-02"] == Status.ERROR and judged["OG-GW-03"] == Status.ERROR

"""offgrid bench through an authenticating gateway: the real engine (llama.cpp + SmolLM2)
behind a real proxy on loopback that checks `Authorization: Bearer` against the token store
as the gateway role renders it. The run records the authenticated gateway and the team
view (never the key); a missing, revoked or refused credential is exit 2, not a result; and
`offgrid ide-config` hands out the models the run measured, with telemetry off."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from auditor.checks import tel
from auditor.cli import main
from auditor.console import Console
from auditor.embedded.llamacpp import RunningEngine
from auditor.inventory import ide
from auditor.inventory.interface import AuditOptions, IdeFacts
from auditor.verdicts import Status
from tests.integration.auth_proxy import ProxyState, running_proxy
from tests.unit.audit_facts import facts
from tests.unit.report_variants import report_data

pytestmark = pytest.mark.integration
SEED = Path(__file__).resolve().parents[2] / "auditor" / "data" / "examples"
CLOUD = SEED / "cloud-reference.seed.json"


@dataclass
class Gateway:
    url: str
    state: ProxyState
    model: str
    tmp: Path

    def issue(self, user: str) -> Path:
        out, err = io.StringIO(), io.StringIO()
        argv = ["gateway", "token", "issue", "--store", str(self.state.store), "--user", user]
        assert main(argv, Console(stdout=out, stderr=err)) == 0, err.getvalue()
        path = self.tmp / f"{user}.token"
        path.write_text(out.getvalue())
        path.chmod(0o600)
        return path


@pytest.fixture(scope="module")
def gateway(
    llama_engine: RunningEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gateway")
    state = ProxyState(store=tmp / "tokens.json", upstream=("127.0.0.1", llama_engine.port))
    with running_proxy(state) as url:
        yield Gateway(url, state, llama_engine.config.alias, tmp)


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def _bench(gw: Gateway, *extra: str) -> list[str]:
    return [
        "bench", "--endpoint", gw.url, "--api", "openai", "--model", gw.model,
        "--runs", "1", "--warmup", "0", "--timeout", "300", *extra,
    ]  # fmt: skip


def _one_line_error(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("offgrid: error:") and "Traceback" not in err


@pytest.fixture(scope="module")
def team_run(gateway: Gateway) -> tuple[dict[str, Any], Path, str]:
    key = gateway.issue("alice")
    output = gateway.tmp / "bench.json"
    argv = _bench(
        gateway, "--categories", "autocomplete,function", "--concurrency", "2",
        "--cloud-reference", str(CLOUD), "--api-key-file", str(key), "--output", str(output),
    )  # fmt: skip
    code, stdout, err = _run(argv)
    assert code == 0, err
    token = key.read_text().strip()
    assert token not in stdout + err + output.read_text()
    return json.loads(output.read_text()), output, token


def test_the_run_went_through_the_authenticated_gateway(
    gateway: Gateway, team_run: tuple[dict[str, Any], Path, str]
) -> None:
    section, _, _ = team_run
    assert section["access"] == {
        "via": "authenticated gateway",
        "scheme": "bearer",
        "credential_source": "file",
        "concurrency_view": "team",
    }
    for category in section["categories"]:
        assert category["failures"] == 0, category["errors"]
    assert section["concurrency"][0]["users"] == 2 and section["concurrency"][0]["failures"] == 0
    generated = [e for e in gateway.state.log if e[1] == "/v1/chat/completions"]
    assert len(generated) >= 4 and {user for user, _, _ in generated} == {"alice"}
    assert {status for _, _, status in generated} == {200}


def test_the_report_labels_the_sweep_the_team_view(
    team_run: tuple[dict[str, Any], Path, str], tmp_path: Path
) -> None:
    section, _, _ = team_run
    report = tmp_path / "bench.md"
    code, _, err = _run(
        [
            "report",
            "render",
            str(_as_report(section, tmp_path)),
            "-f",
            "markdown",
            "-o",
            str(report),
        ]
    )
    assert code == 0, err
    text = report.read_text()
    assert "Team view: simultaneous developers through the authenticated gateway" in text
    assert "authenticated gateway" in text and "### Concurrency" not in text


def _as_report(section: dict[str, Any], tmp_path: Path) -> Path:
    """The same run as a full report (`bench --format json` writes one)."""
    data = report_data()
    data["benchmark"] = section
    path = tmp_path / "report.json"
    path.write_text(json.dumps(data))
    return path


def test_ide_config_hands_out_the_measured_model_and_passes_og_tel(
    gateway: Gateway, team_run: tuple[dict[str, Any], Path, str], tmp_path: Path
) -> None:
    _, output, token = team_run
    token_file = gateway.tmp / "alice.token"
    home = tmp_path / "alice"
    code, stdout, err = _run([
        "ide-config", "--user", "alice", "--url", gateway.url, "--api", "openai",
        "--token-file", str(token_file), "--out", str(home), "--bench-report", str(output),
        "--store", str(gateway.state.store),
    ])  # fmt: skip
    assert code == 0, err
    assert "models from the measured crossover" in stdout and token not in stdout + err
    assert f"autocomplete: {gateway.model}" in stdout and f"chat: {gateway.model}" in stdout
    files = ide.user_files("alice", home, os.geteuid())
    audited = facts(options=AuditOptions(ide_users=("alice",)), ide=IdeFacts(tuple(files), ()))
    assert tel.vscode_telemetry(audited).status is Status.PASS
    assert tel.continue_telemetry(audited).status is Status.PASS


def test_credential_from_the_environment(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    token = gateway.issue("bob").read_text().strip()
    monkeypatch.setenv("OFFGRID_API_KEY", token)
    code, stdout, err = _run(_bench(gateway, "--categories", "autocomplete"))
    assert code == 0, err
    section = json.loads(stdout)
    assert section["access"]["credential_source"] == "environment"
    assert "concurrency_view" not in section["access"]  # no sweep, no team view
    assert token not in stdout + err


def test_missing_revoked_and_refused_credentials_are_exit_2_not_results(
    gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OFFGRID_API_KEY", raising=False)
    output = tmp_path / "never.json"
    base = _bench(gateway, "--categories", "autocomplete", "--output", str(output))
    code, _, err = _run(base)
    assert code == 2 and _one_line_error(err) and "requires a credential" in err, err
    carol = gateway.issue("carol")
    token_id = carol.read_text().split("_")[1]
    argv = ["gateway", "token", "revoke", "--store", str(gateway.state.store), "--id", token_id]
    assert _run(argv)[0] == 0
    code, _, err = _run([*base, "--api-key-file", str(carol)])
    assert code == 2 and _one_line_error(err) and "refused the credential (HTTP 401" in err, err
    dave = gateway.issue("dave")
    gateway.state.blocked.add("dave")
    code, _, err = _run([*base, "--api-key-file", str(dave), "--concurrency", "2"])
    assert code == 2 and _one_line_error(err) and "HTTP 403" in err, err
    assert not output.exists()  # a refusal is never written as a benchmark result
    statuses = {(user, status) for user, _, status in gateway.state.log if user != "alice"}
    assert (None, 401) in statuses and ("dave", 403) in statuses

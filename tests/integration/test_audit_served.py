"""OG-PRM-01 against real processes: the Ollama stand-in (playing 0.33) serves the bundle's
tuned SmolLM2 through a llama-server runner started with the Modelfile's num_ctx and
num_gpu; the audit reads them back and compares them with the lock."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import requests

from auditor.checks.runner import run_controls
from auditor.embedded.llamacpp import SMOLLM2_ALIAS, RunningEngine, bundled_model_path
from auditor.engine_kind import EngineKind
from auditor.inventory.collect import collect
from auditor.inventory.interface import AuditOptions
from auditor.models import lockfile
from auditor.verdicts import ControlResult, Status
from tests.integration.bench_standin import standin
from tests.integration.models_helpers import TUNED, TUNED_MODELFILE, build_bundle, offgrid
from tests.integration.test_audit_runners import _pid_listening

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bundle(tmp_path_factory.mktemp("served") / "bundle")


def _og_prm(bundle: Path, lock: Path, tmp_path: Path) -> ControlResult:
    env = {"OFFGRID_STANDIN_VERSION": "0.33.0", "OLLAMA_MODELS": str(bundle / "models/ollama")}
    with standin(tmp_path, env) as url:
        loaded = requests.post(url + "/api/generate", json={"model": TUNED}, timeout=60)
        assert loaded.status_code == 200, loaded.text
        options = AuditOptions(
            engine=EngineKind.OLLAMA, engine_pid=_pid_listening(url), lock_path=lock,
            hash_cache_dir=tmp_path / "state",
        )  # fmt: skip
        facts = collect(options)
    return next(r for r in run_controls(facts) if r.id == "OG-PRM-01")


def test_served_parameters_match_the_lock(bundle: Path, tmp_path: Path) -> None:
    result = _og_prm(bundle, bundle / lockfile.LOCK_FILE, tmp_path)
    assert result.status is Status.PASS, result.evidence
    values = {e.label: e.value for e in result.evidence}
    assert values[f"{TUNED} num_ctx"] == "lock 8192, engine 8192"
    assert "runner pid" in values[f"{TUNED} source"]


def test_a_lock_asking_for_other_parameters_fails(bundle: Path, tmp_path: Path) -> None:
    lock = lockfile.load(bundle / lockfile.LOCK_FILE)
    model = lock.models[0]
    assert model.source is not None
    changed = dataclasses.replace(
        model,
        source=dataclasses.replace(
            model.source, parameters={**model.source.parameters, "num_ctx": 32768}
        ),
    )
    other = tmp_path / "other.lock.json"
    lockfile.save(lock.with_model(changed), other)
    result = _og_prm(bundle, other, tmp_path)
    assert result.status is Status.FAIL
    assert "num_ctx 8192 (lock: 32768)" in result.summary


def test_llamacpp_engine_runs_another_context_than_the_lock(
    llama_engine: RunningEngine, tmp_path: Path
) -> None:
    """The engine the tests run (llama-cpp-python, --n_ctx 2048) serves the bundle's GGUF,
    whose Modelfile asks for num_ctx 8192: the audit says so."""
    named = offgrid(
        "bundle", "add-gguf", tmp_path / "b", "--name", SMOLLM2_ALIAS, "--modelfile",
        TUNED_MODELFILE, "--gguf", bundled_model_path(), "--engine", "llamacpp",
    )  # fmt: skip
    assert named.code == 0, named.err
    again = offgrid(
        "bundle", "add-gguf", tmp_path / "b", "--name", SMOLLM2_ALIAS, "--modelfile",
        TUNED_MODELFILE, "--gguf", bundled_model_path(), "--engine", "ollama",
    )  # fmt: skip
    assert again.code == 0, again.err
    options = AuditOptions(
        engine=EngineKind.LLAMACPP, engine_pid=llama_engine.pid,
        lock_path=tmp_path / "b" / lockfile.LOCK_FILE, hash_cache_dir=tmp_path / "state",
    )  # fmt: skip
    result = next(r for r in run_controls(collect(options)) if r.id == "OG-PRM-01")
    assert result.status is Status.FAIL, result.evidence
    assert "num_ctx 2048 (lock: 8192)" in result.summary

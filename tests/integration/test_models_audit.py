"""OG-INT in the audit against the real llama.cpp engine: its mapped native libraries are
checked against the lock's wheel pins, its GGUF against the lock; one verification serves
the three controls and the report's integrity section."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from auditor.checks.runner import run_controls
from auditor.embedded.llamacpp import RunningEngine
from auditor.enginebuild.cache import default_cache_root
from auditor.enginebuild.install import installed_build
from auditor.inventory.collect import collect
from auditor.inventory.interface import AuditOptions, Facts
from auditor.report.from_facts import integrity_section
from auditor.report.model import integrity_json
from auditor.verdicts import Status
from tests.integration.models_helpers import build_bundle, offgrid

pytestmark = pytest.mark.integration


def _section(facts: Facts) -> dict[str, object] | None:
    """The report's integrity section, as JSON."""
    return None if facts.integrity is None else integrity_json(integrity_section(facts.integrity))


def _engine_wheel() -> Path:
    """The recipe's cached wheel this venv's engine was installed from (`make setup`)."""
    built = installed_build(default_cache_root())
    assert built is not None, "the installed engine is no build of the recipe: run make setup"
    return built.wheel


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audit")
    bundle = build_bundle(root / "bundle")
    wheelhouse = root / "wheelhouse"
    wheelhouse.mkdir()
    shutil.copy(_engine_wheel(), wheelhouse)
    assert offgrid("bundle", "add-engine", bundle, "--llamacpp-wheelhouse", wheelhouse).code == 0
    return bundle


def _og_int(llama_engine: RunningEngine, lock: Path, state: Path) -> dict[str, object]:
    options = AuditOptions(
        engine="llamacpp", engine_pid=llama_engine.pid, lock_path=lock, hash_cache_dir=state
    )
    facts = collect(options)
    results = {r.id: r for r in run_controls(facts) if r.id.startswith("OG-INT")}
    return {"results": results, "section": _section(facts), "facts": facts}


def test_audit_passes_against_the_pinned_engine(
    llama_engine: RunningEngine, bundle: Path, tmp_path: Path
) -> None:
    out = _og_int(llama_engine, bundle / "offgrid.lock.json", tmp_path)
    results = out["results"]
    assert isinstance(results, dict)
    for control in ("OG-INT-01", "OG-INT-02", "OG-INT-03"):
        assert results[control].status is Status.PASS, (control, results[control].evidence)
    evidence = {e.label: e.value for e in results["OG-INT-01"].evidence}
    assert "libllama.so" in json.dumps([e.value for e in results["OG-INT-01"].evidence])
    assert evidence["mode"].startswith("full")
    integrity = out["section"]
    assert isinstance(integrity, dict)
    assert integrity["layout"] == "gguf" and integrity["engine"]["status"] == "ok"
    assert integrity["models"][0]["status"] == "ok"
    # one verification, collected with the facts, serves the section and the three checks
    assert out["facts"].integrity is not None  # type: ignore[attr-defined]


def test_a_library_that_differs_from_its_pin_fails_og_int_01(
    llama_engine: RunningEngine, bundle: Path, tmp_path: Path
) -> None:
    raw = json.loads((bundle / "offgrid.lock.json").read_text())
    engine = next(e for e in raw["engines"] if e["name"] == "llamacpp")
    for binary in engine["binaries"]:
        if binary["path"].startswith("llama_cpp/lib/libllama.so"):
            binary["sha256"] = "0" * 64  # the pin says another build: the mapped one is foreign
    lock = tmp_path / "offgrid.lock.json"
    lock.write_text(json.dumps(raw))
    results = _og_int(llama_engine, lock, tmp_path / "state")["results"]
    assert isinstance(results, dict)
    verdict = results["OG-INT-01"]
    assert verdict.status is Status.FAIL
    assert "libllama.so" in verdict.summary


def test_without_a_lock_the_controls_do_not_apply(llama_engine: RunningEngine) -> None:
    facts = collect(AuditOptions(engine="llamacpp", engine_pid=llama_engine.pid))
    results = [r for r in run_controls(facts) if r.id.startswith("OG-INT")]
    assert {r.status for r in results} == {Status.NOT_APPLICABLE}
    assert "no lock file configured" in results[0].summary
    assert _section(facts) is None


def test_an_invalid_lock_is_an_error_not_a_pass(
    llama_engine: RunningEngine, tmp_path: Path
) -> None:
    lock = tmp_path / "offgrid.lock.json"
    lock.write_text('{"lock_version": 1}')
    facts = collect(AuditOptions(engine="llamacpp", engine_pid=llama_engine.pid, lock_path=lock))
    results = [r for r in run_controls(facts) if r.id.startswith("OG-INT")]
    assert {r.status for r in results} == {Status.ERROR}

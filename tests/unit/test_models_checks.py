"""OG-INT-01..03 on recorded facts with a real (small) store, lock and engine binary."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from auditor.checks.integrity import engine_binary_pinned, models_match_lock, no_unpinned_models
from auditor.inventory import integrity
from auditor.inventory.interface import AuditOptions, Facts
from auditor.models import lockfile
from auditor.models.build import add_gguf
from auditor.models.hashing import sha256_file
from auditor.models.lockfile import EnginePin, FilePin
from auditor.models.modelfile import parse
from auditor.models.store import parse_name
from auditor.verdicts import Status
from tests.unit import audit_facts
from tests.unit.gguf_writer import write_gguf


def _lock_and_store(tmp: Path, binary: Path, pin_binary: bool = True) -> tuple[Path, Path]:
    store = tmp / "store"
    gguf = write_gguf(tmp / "m.gguf", {"general.architecture": "llama"}, [("w", (8, 8))])
    model = add_gguf(store, parse_name("m:t"), gguf, parse("FROM m.gguf\nPARAMETER num_ctx 64"))
    digest = sha256_file(binary)
    assert digest.sha256 is not None
    binaries = (FilePin("bin/ollama", digest.sha256, digest.size),) if pin_binary else ()
    tarball = FilePin("engines/ollama/0.33.0/ollama-linux-amd64.tgz", "0" * 64, 1)
    lock = lockfile.Lock().with_model(model)
    lock = lock.with_engine(EnginePin("ollama", "0.33.0", "tarball", (tarball,), binaries))
    lock_path = tmp / lockfile.LOCK_FILE
    lockfile.save(lock, lock_path)
    return lock_path, store


def _with_integrity(facts: Facts) -> Facts:
    """The facts with the integrity verification collected, as an audit collects it."""
    return dataclasses.replace(facts, integrity=integrity.collect(facts.options, facts.engine))


def _facts(tmp: Path, lock: Path | None, store: Path, binary: Path) -> Facts:
    options = AuditOptions(lock_path=lock, store_dir=store, hash_cache_dir=tmp / "state")
    engine = audit_facts.engine(exe_path=str(binary))
    return _with_integrity(audit_facts.facts(options=options, engine=engine))


@pytest.fixture
def binary(tmp_path: Path) -> Path:
    path = tmp_path / "ollama"
    path.write_bytes(b"\x7fELF pretend engine")
    return path


def test_everything_pinned_passes(tmp_path: Path, binary: Path) -> None:
    lock, store = _lock_and_store(tmp_path, binary)
    facts = _facts(tmp_path, lock, store, binary)
    for check in (engine_binary_pinned, models_match_lock, no_unpinned_models):
        verdict = check(facts)
        assert verdict.status is Status.PASS, verdict


def test_changed_binary_fails_og_int_01_naming_it(tmp_path: Path, binary: Path) -> None:
    lock, store = _lock_and_store(tmp_path, binary)
    binary.write_bytes(b"\x7fELF implanted engine")
    verdict = engine_binary_pinned(_facts(tmp_path, lock, store, binary))
    assert verdict.status is Status.FAIL
    assert f"differs from its pin: {binary}" in verdict.summary


def test_unpinned_binary_fails_og_int_01(tmp_path: Path, binary: Path) -> None:
    lock, store = _lock_and_store(tmp_path, binary, pin_binary=False)
    verdict = engine_binary_pinned(_facts(tmp_path, lock, store, binary))
    assert verdict.status is Status.FAIL
    assert "not pinned in the lock" in verdict.summary


def test_store_problems_split_between_og_int_02_and_03(tmp_path: Path, binary: Path) -> None:
    lock, store = _lock_and_store(tmp_path, binary)
    params = next(p for p in (store / "blobs").iterdir() if p.stat().st_size < 40)
    params.unlink()
    (store / "blobs" / ("sha256-" + "a" * 64)).write_bytes(b"x")
    facts = _facts(tmp_path, lock, store, binary)
    models, unpinned = models_match_lock(facts), no_unpinned_models(facts)
    assert models.status is Status.FAIL and "registry.ollama.ai/library/m:t" in models.summary
    assert any(e.label == "missing-blob" and params.name in e.value for e in models.evidence)
    assert unpinned.status is Status.FAIL
    assert any(e.label == "extra-blob" for e in unpinned.evidence)


def test_no_lock_is_not_applicable_and_no_engine_is_an_error(tmp_path: Path, binary: Path) -> None:
    lock, store = _lock_and_store(tmp_path, binary)
    assert models_match_lock(_facts(tmp_path, None, store, binary)).status is Status.NOT_APPLICABLE
    facts = _with_integrity(
        audit_facts.facts(
            options=AuditOptions(lock_path=lock, store_dir=store, hash_cache_dir=tmp_path / "s"),
            engine=None,
        )
    )
    assert engine_binary_pinned(facts).status is Status.ERROR
    assert models_match_lock(facts).status is Status.PASS

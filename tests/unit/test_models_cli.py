"""CLI contract of `offgrid models verify` and `offgrid bundle` on bad input: exit 2, one line."""

import io
from pathlib import Path

from auditor.cli import main
from auditor.console import Console


def _run(*argv: str | Path) -> tuple[int, str]:
    err = io.StringIO()
    code = main([str(a) for a in argv], Console(stdout=io.StringIO(), stderr=err))
    return code, err.getvalue()


def test_missing_lock_is_bad_input(tmp_path: Path) -> None:
    code, err = _run("models", "verify", "--lock", tmp_path / "nope.json", "--store", tmp_path)
    assert code == 2
    assert "lock file not found" in err and "Traceback" not in err


def test_missing_store_is_bad_input(tmp_path: Path) -> None:
    lock = tmp_path / "offgrid.lock.json"
    lock.write_text("{}")
    code, err = _run("models", "verify", "--lock", lock, "--store", tmp_path / "absent")
    assert code == 2
    assert "model store not found" in err


def test_invalid_lock_is_bad_input(tmp_path: Path) -> None:
    lock = tmp_path / "offgrid.lock.json"
    lock.write_text('{"lock_version": 1}')
    code, err = _run(
        "models", "verify", "--lock", lock, "--store", tmp_path, "--cache-dir", tmp_path / "state"
    )
    assert code == 2
    assert "invalid lock file" in err


def test_bundle_verify_without_a_bundle(tmp_path: Path) -> None:
    code, err = _run("bundle", "verify", tmp_path / "absent")
    assert code == 2 and "bundle directory not found" in err


def test_export_needs_models_or_all(tmp_path: Path) -> None:
    (tmp_path / "store/manifests").mkdir(parents=True)
    code, err = _run("bundle", "export", tmp_path / "b", "--store", tmp_path / "store")
    assert code == 2 and "--all" in err


def test_add_gguf_refuses_a_file_that_is_not_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model")
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text("FROM fake.gguf\n")
    code, err = _run(
        "bundle", "add-gguf", tmp_path / "b", "--name", "m:t", "--modelfile", modelfile
    )
    assert code == 2 and "not a GGUF file" in err

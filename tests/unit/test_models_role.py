"""The offgrid_models role, run for real by ansible-playbook over a local connection.

One run, five "hosts" of a mixed fleet, each with its own bundle and throw-away live
directories (owned by root here): the Ollama store from a bundle, the GGUF files for llama.cpp
from the same bundle, a host whose own bundle has a corrupted layer (refused while the others
install: the bundle is hashed per host, not once for the play), a model the lock does not pin,
and a lock of another version.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.models_helpers import build_bundle, flip_byte, lock_json
from tests.unit.local_play import fatal_results, recap_failed, run_role

pytestmark = pytest.mark.root  # the role sets owners, as on a workstation


def _host(
    tmp: Path, name: str, bundle: Path, engine: str, **variables: object
) -> dict[str, object]:
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "offgrid_bundle_dir": str(bundle),
        "offgrid_engine": engine,
        "offgrid_models_store_dir": str(tmp / name / "store"),
        "offgrid_models_store_owner": "root",
        "offgrid_models_store_group": "root",
        "offgrid_models_gguf_dir": str(tmp / name / "gguf"),
        "offgrid_models_gguf_group": "root",
        **variables,
    }


@pytest.fixture(scope="module")
def role_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("models-role")
    bundle = build_bundle(tmp / "bundle")
    corrupt = Path(shutil.copytree(bundle, tmp / "corrupt"))
    digest = lock_json(corrupt)["models"][0]["layers"][0]["digest"]  # type: ignore[index]
    flip_byte(corrupt / "models/ollama/blobs" / digest.replace(":", "-"))
    newer = tmp / "newer"
    newer.mkdir()
    (newer / "offgrid.lock.json").write_text(json.dumps({**lock_json(bundle), "lock_version": 2}))
    hosts = {
        "ollama-store": _host(tmp, "ollama-store", bundle, "ollama"),
        "gguf": _host(tmp, "gguf", bundle, "llamacpp"),
        "corrupt-bundle": _host(tmp, "corrupt-bundle", corrupt, "ollama"),
        "unknown-model": _host(
            tmp, "unknown-model", bundle, "ollama", offgrid_models_names=["nope:1"]
        ),
        "newer-lock": _host(tmp, "newer-lock", newer, "ollama"),
    }
    output = run_role(
        tmp, "offgrid_models", {"all": {"hosts": hosts}}, "all", {"ANSIBLE_FORKS": "5"}
    )
    messages = {
        host: [str(result.get("msg")) for result in results]
        for host, results in fatal_results(output).items()
    }
    return {"tmp": tmp, "bundle": bundle, "digest": digest, "output": output,
            "failed": recap_failed(output), "messages": messages}  # fmt: skip


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refused(run: dict[str, Any], host: str) -> str:
    assert run["failed"][host] == 1, run["output"]
    (message,) = run["messages"][host]
    return message


def test_ollama_models_install_into_the_store(role_run: dict[str, Any]) -> None:
    assert role_run["failed"]["ollama-store"] == 0, role_run["messages"].get("ollama-store")
    store = role_run["tmp"] / "ollama-store" / "store"
    model = lock_json(role_run["bundle"])["models"][0]  # type: ignore[index]
    assert _sha256(store / model["manifest"]["path"]) == model["manifest"]["sha256"]
    for blob in [model["config"], *model["layers"]]:
        assert (
            "sha256:" + _sha256(store / "blobs" / blob["digest"].replace(":", "-"))
            == blob["digest"]
        )
    assert not (store / ".offgrid-staging").exists()


def test_gguf_files_install_for_llamacpp(role_run: dict[str, Any]) -> None:
    assert role_run["failed"]["gguf"] == 0, role_run["messages"].get("gguf")
    gguf = lock_json(role_run["bundle"])["gguf"][0]  # type: ignore[index]
    live = role_run["tmp"] / "gguf" / "gguf" / gguf["path"].rsplit("/", 1)[-1]
    assert _sha256(live) == gguf["sha256"] and live.stat().st_mode & 0o777 == 0o640
    assert not (role_run["tmp"] / "gguf" / "store").exists()


def test_each_host_hashes_its_own_bundle(role_run: dict[str, Any]) -> None:
    message = _refused(role_run, "corrupt-bundle")
    assert f"blob {role_run['digest']}" in message and "nothing was installed" in message
    assert not (role_run["tmp"] / "corrupt-bundle" / "store" / "manifests").exists()


def test_a_model_the_lock_does_not_pin_is_refused(role_run: dict[str, Any]) -> None:
    assert "does not pin nope:1" in _refused(role_run, "unknown-model")


def test_a_lock_of_another_version_is_refused(role_run: dict[str, Any]) -> None:
    assert "lock_version 2, this playbook reads 1" in _refused(role_run, "newer-lock")

"""roles/offgrid_models on the offline test workstation: the pinned model is installed and
verified there, a second run changes nothing, and a corrupted bundle blob fails the play with
the blob named while the live store stays exactly as it was."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.host.workstation import Workstation, booted
from tests.integration.models_helpers import build_bundle, flip_byte, lock_json

pytestmark = [pytest.mark.host, pytest.mark.root]

STORE = "/usr/share/ollama/.ollama/models"
GGUF_DIR = "/var/lib/offgrid/models/gguf"
PLAYBOOK = """\
- name: Install the bundle's pinned models (offgrid_models role test)
  hosts: workstations
  become: true
  roles:
    - role: offgrid_models
"""


@pytest.fixture(scope="module")
def machine() -> Iterator[Workstation]:
    with booted(f"ogm-{os.getpid()}") as ws:
        # What the engine roles would have created: the service users and groups.
        ws.run(
            "groupadd --system ollama && useradd --system --gid ollama --no-create-home "
            "--shell /bin/false ollama && groupadd --system llamacpp"
        )
        yield ws


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bundle(tmp_path_factory.mktemp("models-role") / "bundle")


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("playbook") / "models.yml"
    path.write_text(PLAYBOOK)
    return path


def _vars(bundle: Path, engine: str = "ollama", **extra: object) -> dict[str, object]:
    return {"offgrid_bundle_dir": str(bundle), "offgrid_engine": engine, **extra}


def _snapshot(ws: Workstation, directory: str) -> str:
    """Every file under directory with its sha256, owner and mode: the live state to compare."""
    listing = ws.run(
        f"cd {directory} && find . -type f -printf '%p %u:%g %m ' -exec sha256sum {{}} \\; | sort",
        check=False,
    )
    return listing.stdout


def _expected_files(bundle: Path) -> dict[str, str]:
    model = lock_json(bundle)["models"][0]  # type: ignore[index]
    files = {model["manifest"]["path"]: model["manifest"]["sha256"]}
    for blob in [model["config"], *model["layers"]]:
        files["blobs/" + blob["digest"].replace(":", "-")] = blob["digest"][7:]
    return files


def test_check_mode_installs_nothing(machine: Workstation, bundle: Path, playbook: Path) -> None:
    machine.playbook(playbook, extra_vars=_vars(bundle), check_mode=True)
    assert machine.run(f"find {STORE} -type f", check=False).stdout == ""


def test_role_installs_the_pinned_model(machine: Workstation, bundle: Path, playbook: Path) -> None:
    run = machine.playbook(playbook, extra_vars=_vars(bundle))
    assert run.stats[machine.name].changed > 0
    for relpath, sha in _expected_files(bundle).items():
        out = machine.run(f"sha256sum {STORE}/{relpath} && stat -c '%U:%G %a' {STORE}/{relpath}")
        assert out.stdout.split()[0] == sha
        assert out.stdout.split("\n")[1] == "ollama:ollama 644"
    assert machine.run(f"test -e {STORE}/.offgrid-staging", check=False).returncode != 0


def test_second_run_changes_nothing(machine: Workstation, bundle: Path, playbook: Path) -> None:
    run = machine.playbook(playbook, extra_vars=_vars(bundle))
    assert run.stats[machine.name].changed == 0, run.changed_tasks()


def _bundle_with_corrupt_layer(bundle: Path, tmp_path: Path) -> tuple[Path, str]:
    """A copy of the bundle with one byte flipped in the first model's first layer."""
    corrupt = Path(shutil.copytree(bundle, tmp_path / "bundle"))
    model = lock_json(corrupt)["models"][0]  # type: ignore[index]
    digest: str = model["layers"][0]["digest"]
    flip_byte(corrupt / "models/ollama/blobs" / digest.replace(":", "-"))
    return corrupt, digest


def test_corrupted_bundle_blob_fails_on_the_controller(
    machine: Workstation, bundle: Path, playbook: Path, tmp_path: Path
) -> None:
    before = _snapshot(machine, STORE)
    corrupt, digest = _bundle_with_corrupt_layer(bundle, tmp_path)
    run = machine.playbook(playbook, extra_vars=_vars(corrupt), expect_failure=True)
    assert f"blob {digest}" in run.output and "nothing was installed" in run.output
    assert _snapshot(machine, STORE) == before


def test_corrupted_blob_is_caught_on_the_target_before_going_live(
    machine: Workstation, bundle: Path, playbook: Path, tmp_path: Path
) -> None:
    """Corruption the controller did not see (check skipped) is refused on the target."""
    before = _snapshot(machine, STORE)
    corrupt, digest = _bundle_with_corrupt_layer(bundle, tmp_path)
    fresh = "/srv/offgrid-fresh-store"
    run = machine.playbook(
        playbook,
        extra_vars=_vars(
            corrupt, offgrid_models_verify_on_controller=False, offgrid_models_store_dir=fresh
        ),
        expect_failure=True,
    )
    assert f"blob {digest}" in run.output
    assert "the live store is unchanged" in run.output
    assert machine.run(f"find {fresh} -type f", check=False).stdout == ""  # nothing went live
    assert machine.run(f"test -e {fresh}/.offgrid-staging", check=False).returncode != 0
    assert _snapshot(machine, STORE) == before


def test_plain_gguf_for_llamacpp(machine: Workstation, bundle: Path, playbook: Path) -> None:
    first = machine.playbook(playbook, extra_vars=_vars(bundle, "llamacpp"))
    assert first.stats[machine.name].changed > 0
    gguf = lock_json(bundle)["gguf"][0]  # type: ignore[index]
    name = gguf["path"].rsplit("/", 1)[-1]
    out = machine.run(f"sha256sum {GGUF_DIR}/{name} && stat -c '%U:%G %a' {GGUF_DIR}/{name}")
    assert out.stdout.split()[0] == gguf["sha256"]
    assert out.stdout.split("\n")[1] == "root:llamacpp 640"
    again = machine.playbook(playbook, extra_vars=_vars(bundle, "llamacpp"))
    assert again.stats[machine.name].changed == 0, again.changed_tasks()

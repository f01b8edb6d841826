"""`offgrid bundle add-debs`: Debian packages resolved and downloaded with this machine's apt,
pinned in the lock, checked by `bundle verify` like every other bundle file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from auditor.models.debs import parse_closure
from tests.integration.models_helpers import flip_byte, offgrid, sha256sum

pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs Debian's apt")


def test_parse_closure_keeps_real_packages_only() -> None:
    text = "zstd\n  Depends: libc6\n  |Depends: a\n libc6\n<debconf-2.0>\nlibc6\nliblz4-1:any\n"
    assert parse_closure(text) == ["libc6", "liblz4-1", "zstd"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("debs") / "bundle"
    run = offgrid("bundle", "add-debs", root, "zstd")
    assert run.code == 0, run.err
    assert "zstd" in run.out and "bookworm" in run.out
    return root


def test_closure_is_pinned_with_the_real_hashes(bundle: Path) -> None:
    debs = json.loads((bundle / "offgrid.lock.json").read_text())["debs"]
    assert debs["requested"] == ["zstd"] and debs["architecture"] == "amd64"
    names = {p["name"] for p in debs["packages"]}
    assert {"zstd", "liblz4-1", "libc6"} <= names
    for pin in debs["packages"]:
        path = bundle / pin["path"]
        assert path.stat().st_size == pin["size"]
        assert sha256sum(path) == pin["sha256"]


def test_verify_names_a_changed_or_unpinned_deb(bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    assert offgrid("bundle", "verify", copy).code == 0
    zstd = next((copy / "debs").glob("zstd_*.deb"))
    flip_byte(zstd, 100)
    (copy / "debs" / "extra_1.0_amd64.deb").write_bytes(b"!")
    run = offgrid("bundle", "verify", copy)
    assert run.code == 1
    assert zstd.name in run.out and "extra_1.0_amd64.deb" in run.out


@pytest.mark.parametrize("name", ["Not_A_Package", "no-such-package-offgrid"])
def test_bad_package_names_are_one_line_errors(tmp_path: Path, name: str) -> None:
    run = offgrid("bundle", "add-debs", tmp_path / "b", name)
    assert run.code == 2
    assert len(run.err.strip().splitlines()) == 1
    assert not (tmp_path / "b" / "offgrid.lock.json").exists()

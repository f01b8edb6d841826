import os
from pathlib import Path

import pytest

from auditor.errors import InputError
from auditor.fsutil import atomic_write_text


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert os.listdir(tmp_path) == ["report.json"]


def test_symlink_destination_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    link = tmp_path / "report.json"
    link.symlink_to(victim)
    with pytest.raises(InputError):
        atomic_write_text(link, "overwrite")
    assert victim.read_text() == "keep"


def test_missing_directory_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        atomic_write_text(tmp_path / "nope" / "r.json", "x")

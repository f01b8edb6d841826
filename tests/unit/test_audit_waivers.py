"""Waivers: valid, expired, malformed."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from auditor.checks.waivers import load_waivers
from auditor.errors import InputError

IDS = {"OG-NET-04", "OG-HRD-01"}
TODAY = dt.date(2026, 11, 24)


def _file(tmp_path: Path, text: str, name: str = "waivers.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_valid_toml_waiver(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        '[OG-NET-04]\njustification = "firewall next sprint"\nexpires = 2026-12-31\n'
        'approved_by = "ciso"\n',
    )
    waivers = load_waivers(path, IDS, TODAY)
    assert waivers.active["OG-NET-04"].expires == "2026-12-31"
    assert waivers.active["OG-NET-04"].approved_by == "ciso"
    assert waivers.expired == ()


def test_waiver_valid_through_its_expiry_day(tmp_path: Path) -> None:
    path = _file(tmp_path, '[OG-NET-04]\njustification = "x"\nexpires = "2026-11-24"\n')
    assert "OG-NET-04" in load_waivers(path, IDS, TODAY).active


def test_expired_waiver_counts_as_none(tmp_path: Path) -> None:
    path = _file(tmp_path, '[OG-HRD-01]\njustification = "old"\nexpires = 2026-11-23\n')
    waivers = load_waivers(path, IDS, TODAY)
    assert waivers.active == {}
    assert [w.control_id for w in waivers.expired] == ["OG-HRD-01"]


def test_json_waivers(tmp_path: Path) -> None:
    data = {"OG-NET-04": {"justification": "j", "expires": "2027-01-01"}}
    path = _file(tmp_path, json.dumps(data), "waivers.json")
    assert "OG-NET-04" in load_waivers(path, IDS, TODAY).active


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[OG-NET-04\n", "waivers file"),
        ("[OG-NET-04]\nexpires = 2027-01-01\n", "justification"),
        ('[OG-NET-04]\njustification = "j"\n', "expires"),
        ('[OG-NET-04]\njustification = "j"\nexpires = "next year"\n', "ISO date"),
        ('[OG-NOPE-01]\njustification = "j"\nexpires = 2027-01-01\n', "unknown control id"),
        ('[OG-NET-04]\njustification = "j"\nexpires = 2027-01-01\nrun = false\n', "unknown key"),
        ('OG-NET-04 = "yes"\n', "must be a table"),
    ],
)
def test_malformed_waivers_are_input_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_waivers(_file(tmp_path, text), IDS, TODAY)


def test_missing_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        load_waivers(tmp_path / "absent.toml", IDS, TODAY)

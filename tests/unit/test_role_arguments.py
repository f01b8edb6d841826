"""Every role's meta/argument_specs.yml declares exactly the variables of its defaults/main.yml
(plus the required ones, which have no default), with the same default wherever the default is
a plain value (not a template)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROLES = sorted(p for p in (Path(__file__).resolve().parents[2] / "roles").iterdir() if p.is_dir())


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    assert isinstance(data, dict), path
    return data


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_argument_specs_match_defaults(role: Path) -> None:
    defaults = _load(role / "defaults" / "main.yml")
    options: dict[str, Any] = _load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"][
        "options"
    ]
    required = {name for name, spec in options.items() if spec.get("required")}
    assert not required & set(defaults), "a required option has a default"
    assert sorted(set(options) - required) == sorted(defaults), (
        "declared but not defaulted, or the reverse"
    )
    for name, value in defaults.items():
        spec = options[name]
        if isinstance(value, str) and "{{" in value:
            assert "default" not in spec or "{{" in str(spec["default"]), name
            continue
        assert spec.get("default") == value, (
            f"{name}: spec {spec.get('default')!r}, defaults {value!r}"
        )


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_role_variables_carry_the_role_prefix(role: Path) -> None:
    files = [role / "defaults" / "main.yml", role / "vars" / "main.yml"]
    names = [name for path in files if path.is_file() for name in _load(path)]
    assert names
    assert [name for name in names if not name.startswith(role.name + "_")] == []

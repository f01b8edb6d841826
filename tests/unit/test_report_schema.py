"""The JSON report against its shipped schema: valid reports pass, broken ones do not."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from referencing.exceptions import NoSuchResource

from auditor.report.model import to_dict
from auditor.report.validate import (
    InvalidReportError,
    _retrieve,
    ensure_valid,
    load_schema,
    validate,
    validate_report,
)
from tests.unit.report_sample import sample_report


def _json(report_dict: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(report_dict))
    return data


@pytest.fixture
def data() -> dict[str, Any]:
    return _json(to_dict(sample_report()))


def test_sample_report_is_valid(data: dict[str, Any]) -> None:
    assert validate(data) == []
    assert validate_report(sample_report()) == []


def test_report_without_optional_sections_is_valid() -> None:
    assert validate_report(sample_report(benchmark=False, integrity=False)) == []


def test_schema_covers_every_field_the_model_writes(data: dict[str, Any]) -> None:
    schema = load_schema("report.schema.json")
    assert set(data) == set(schema["properties"]) == set(schema["required"])
    control_schema = schema["$defs"]["control"]
    assert set(data["controls"][0]) == set(control_schema["required"])


def _break(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    broken = copy.deepcopy(data)
    *parents, last = path.split("/")
    target: Any = broken
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is _DELETE:
        del target[last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return broken


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("controls/0/id", "NET-1", "$.controls[0].id"),
        ("controls/0/status", "passed", "$.controls[0].status"),
        ("controls/0/severity", "urgent", "$.controls[0].severity"),
        ("controls/0/evidence/0/value", 42, "$.controls[0].evidence[0].value"),
        ("controls/0/surprise", "x", "$.controls[0]"),
        ("controls/1/rationale", _DELETE, "$.controls[1]"),
        ("started_at", "yesterday", "$.started_at"),
        ("finished_at", "2026-11-24T02:00:07", "$.finished_at"),  # no offset
        ("tool/name", "other", "$.tool.name"),
        ("summary/fail", -1, "$.summary.fail"),
        ("benchmark", [], "$.benchmark"),
        ("benchmark/settings/percentile_method", "vibes", "$.benchmark.settings.percentile_method"),
        ("benchmark/categories/0/ttft_ms/p95", "fast", "$.benchmark.categories[0].ttft_ms"),
        ("benchmark/schema", _DELETE, "$.benchmark"),
        ("extra", None, "$.extra"),
        ("privilege/is_root", "no", "$.privilege.is_root"),
    ],
)
def test_broken_reports_are_rejected(
    data: dict[str, Any], path: str, value: Any, expected: str
) -> None:
    errors = validate(_break(data, path, value))
    assert errors, f"{path}={value!r} was accepted"
    assert any(error.startswith(expected) for error in errors), errors


def test_waiver_expiry_must_be_a_date(data: dict[str, Any]) -> None:
    waived = next(i for i, c in enumerate(data["controls"]) if c["waiver"])
    errors = validate(_break(data, f"controls/{waived}/waiver/expires", "next year"))
    assert any("waiver" in error for error in errors), errors


def test_consistency_beyond_the_schema(data: dict[str, Any]) -> None:
    duplicate = _break(data, "controls/1/id", data["controls"][0]["id"])
    duplicate["controls"][1]["family"] = data["controls"][0]["family"]
    assert any("duplicate control id" in e for e in validate(duplicate))
    assert any("summary.pass" in e for e in validate(_break(data, "summary/pass", 9)))
    assert any("family" in e for e in validate(_break(data, "controls/0/family", "OG-CFG")))


def test_unsupported_major_version_is_named(data: dict[str, Any]) -> None:
    errors = validate(_break(data, "schema_version", "2.0"))
    assert errors == ["$.schema_version: 2.0 is not supported (this offgrid reads 1.x)"]


def test_not_an_object_is_rejected_with_a_short_message() -> None:
    errors = validate(["x" * 10_000])
    assert errors and all(len(e) < 300 for e in errors)


def test_benchmark_section_is_checked_against_its_own_schema() -> None:
    schema = load_schema("report.schema.json")
    assert {"$ref": "benchmark.schema.json"} in schema["properties"]["benchmark"]["oneOf"]
    assert load_schema("benchmark.schema.json")["$defs"]["summary"]


def test_refs_resolve_only_to_shipped_schema_files() -> None:
    with pytest.raises(NoSuchResource):
        _retrieve("https://json-schema.example/evil.schema.json")
    resource = _retrieve("report.schema.json")
    assert resource.contents["title"] == "offgrid report"


def test_ensure_valid_raises_on_a_model_bug() -> None:
    report = sample_report()
    broken = type(report)(**{**report.__dict__, "started_at": "not a time"})
    with pytest.raises(InvalidReportError):
        ensure_valid(broken)


def test_nan_in_a_section_is_reported_not_written() -> None:
    report = sample_report()
    broken = type(report)(**{**report.__dict__, "benchmark": {"ttft_ms": float("nan")}})
    (error,) = validate_report(broken)
    assert "strict JSON" in error

"""The benchmark records and their JSON form: one shape, checked against the schema."""

from __future__ import annotations

import json
from dataclasses import MISSING, fields, replace
from importlib import resources
from typing import Any

import pytest

from auditor.bench import results
from auditor.bench.crossover import CloudRange
from auditor.bench.decisions import crossover_section
from auditor.errors import InputError
from auditor.report.bench_json import benchmark_from_json, benchmark_to_json
from tests.unit.bench_fakes import synthetic_section

SCHEMA = json.loads(
    resources.files("auditor.data").joinpath("benchmark.schema.json").read_text("utf-8")
)
DEFS = SCHEMA["$defs"]
CROSSOVER = DEFS["crossover"]["properties"]
# Each record and the schema object that describes its JSON form.
RECORDS: list[tuple[type[Any], dict[str, Any]]] = [
    (results.BenchmarkSection, SCHEMA),
    (results.SuiteRef, SCHEMA["properties"]["suite"]),
    (results.Settings, SCHEMA["properties"]["settings"]),
    (results.Summary, DEFS["summary"]),
    (results.CategoryResult, DEFS["category"]),
    (results.Samples, DEFS["category"]["properties"]["samples"]),
    (results.ServerFigures, DEFS["server"]),
    (results.RequestFigures, DEFS["request"]),
    (results.ColdStart, DEFS["cold_start"]),
    (results.Level, DEFS["level"]),
    (results.Range, DEFS["range"]),
    (results.Crossover, DEFS["crossover"]),
    (results.LocalFigures, DEFS["local_side"]),
    (results.Scenarios, DEFS["scenarios"]),
    (results.CloudFigures, CROSSOVER["cloud"]),
    (results.DecisionRow, CROSSOVER["decision_matrix"]["items"]),
    (results.RowFigures, CROSSOVER["decision_matrix"]["items"]["properties"]["figures"]),
    (results.CategoryCrossover, CROSSOVER["categories"]["items"]),
    (results.Tco, DEFS["tco"]),
    (results.Hybrid, DEFS["tco"]["properties"]["hybrid"]),
]


@pytest.mark.parametrize(("record", "schema"), RECORDS, ids=lambda r: getattr(r, "__name__", ""))
def test_every_record_field_is_in_the_schema_and_required_alike(
    record: type[Any], schema: dict[str, Any]
) -> None:
    specs = fields(record)
    always = {s.name for s in specs if s.default is MISSING and s.default_factory is MISSING}
    assert {s.name for s in specs} == set(schema["properties"])
    assert always == set(schema.get("required", []))


def _full_section() -> results.BenchmarkSection:
    section = synthetic_section()
    crossover = crossover_section(
        section.categories, CloudRange("c", "s", 180, 600, 80, 150), [], True
    )
    return replace(section, crossover=crossover)


def test_json_round_trip_is_exact() -> None:
    section = _full_section()
    data = json.loads(json.dumps(benchmark_to_json(section)))
    assert benchmark_from_json(data) == section


def test_unknown_fields_and_wrong_types_are_input_errors() -> None:
    data = benchmark_to_json(_full_section())
    data["categories"][1]["latency"] = 1
    with pytest.raises(InputError, match=r"benchmark\.categories\[1\]: unknown field 'latency'"):
        benchmark_from_json(data)
    data = benchmark_to_json(_full_section())
    data["settings"]["runs"] = True
    with pytest.raises(InputError, match=r"benchmark\.settings\.runs: expected int"):
        benchmark_from_json(data)

"""Check a report dict against auditor/data/report.schema.json.

Schemas are read from the installed package and any "$ref" to another schema file
resolves to a file beside it: validation never reaches a network, which an
air-gapped workstation does not have and an audit tool must not use.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

from auditor.report.model import SCHEMA_VERSION, Report, to_dict

REPORT_SCHEMA = "report.schema.json"
SUPPORTED_MAJOR = SCHEMA_VERSION.split(".", 1)[0]

# Schema files another schema may reference by name; anything else is refused.
_LOCAL_SCHEMAS = frozenset({REPORT_SCHEMA, "benchmark.schema.json"})


class InvalidReportError(Exception):
    """The tool built a report its own schema rejects: a bug, not bad input."""


def load_schema(name: str) -> dict[str, Any]:
    text = resources.files("auditor.data").joinpath(name).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _retrieve(uri: str) -> Resource[Any]:
    """Resolve a "$ref" to a schema shipped in auditor/data, by its file name."""
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    if name not in _LOCAL_SCHEMAS:
        raise NoSuchResource(uri)
    try:
        return Resource.from_contents(load_schema(name))
    except FileNotFoundError as exc:
        raise NoSuchResource(uri) from exc


def _is_rfc3339_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True  # format only constrains strings; "type" handles the rest
    if len(value) < 20 or value[10] not in "Tt":
        return False
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return False
    return parsed.tzinfo is not None  # a timestamp without an offset is ambiguous


def _is_iso_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def _format_checker() -> FormatChecker:
    # jsonschema checks "date-time" only when an optional package is present;
    # check it here so a malformed timestamp is always caught.
    checker = FormatChecker(formats=())
    checker.checks("date-time")(_is_rfc3339_datetime)
    checker.checks("date")(_is_iso_date)
    return checker


@cache
def _validator() -> Draft202012Validator:
    schema = load_schema(REPORT_SCHEMA)
    Draft202012Validator.check_schema(schema)
    registry: Registry[Any] = Registry(retrieve=_retrieve)  # type: ignore[call-arg]
    return Draft202012Validator(schema, registry=registry, format_checker=_format_checker())


def _where(error: ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"${path}"


def _shorten(message: str, limit: int = 240) -> str:
    # jsonschema quotes the offending value, which may be a whole section
    return message if len(message) <= limit else message[: limit - 1] + "\N{HORIZONTAL ELLIPSIS}"


def _most_specific(error: ValidationError) -> ValidationError:
    # "null or a benchmark section" fails as one oneOf error quoting the whole
    # section; the useful message is the one from inside the section's schema.
    if error.validator in ("oneOf", "anyOf") and error.context:
        return best_match(e for e in error.context if e.validator != "type") or error
    return error


def _schema_errors(data: Any) -> Iterator[str]:
    errors = [_most_specific(e) for e in _validator().iter_errors(data)]
    for error in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
        yield f"{_where(error)}: {_shorten(error.message)}"


def _consistency_errors(data: Mapping[str, Any]) -> Iterator[str]:
    """What the schema cannot express: unique ids, waivers on their own control."""
    seen: set[str] = set()
    for index, control in enumerate(data["controls"]):
        if control["id"] in seen:
            yield f"$.controls[{index}].id: duplicate control id {control['id']}"
        seen.add(control["id"])
        if not control["id"].startswith(control["family"] + "-"):
            yield f"$.controls[{index}].family: {control['family']} does not match the id"
        waiver = control["waiver"]
        if waiver is not None and waiver["control_id"] != control["id"]:
            yield f"$.controls[{index}].waiver.control_id: waiver is for {waiver['control_id']}"
    expected = _expected_summary(data["controls"])
    for key, count in expected.items():
        if data["summary"][key] != count:
            yield f"$.summary.{key}: {data['summary'][key]} but the controls give {count}"


def _expected_summary(controls: list[Mapping[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(("pass", "fail", "error", "not_applicable", "waived"), 0)
    for control in controls:
        waived = control["status"] == "fail" and control["waiver"] is not None
        counts["waived" if waived else control["status"]] += 1
    counts["total"] = len(controls)
    return counts


def validate(data: Any) -> list[str]:
    """Every reason the parsed JSON `data` is not a valid report; empty when it is."""
    version = data.get("schema_version") if isinstance(data, Mapping) else None
    if isinstance(version, str) and not version.startswith(f"{SUPPORTED_MAJOR}."):
        return [
            f"$.schema_version: {version} is not supported (this offgrid reads {SUPPORTED_MAJOR}.x)"
        ]
    errors = list(_schema_errors(data))
    if errors:
        return errors
    return list(_consistency_errors(data))


def validate_report(report: Report) -> list[str]:
    # Through JSON, so the check sees exactly what a reader of the file sees
    # (tuples become arrays, non-string keys would fail here rather than later).
    try:
        text = json.dumps(to_dict(report), allow_nan=False)
    except (TypeError, ValueError) as exc:  # NaN/Infinity or a value JSON cannot hold
        return [f"$: not representable as strict JSON: {exc}"]
    return validate(json.loads(text))


def ensure_valid(report: Report) -> None:
    errors = validate_report(report)
    if errors:
        raise InvalidReportError("report does not match its schema: " + "; ".join(errors[:5]))

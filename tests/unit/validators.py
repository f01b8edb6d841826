"""The validators offgrid's users run on its output, for the format tests.

promtool (Prometheus' own linter), Jenkins xUnit's junit-10.xsd (through libxml2), NIST's
OSCAL assessment-results JSON Schema and compliance-trestle's OSCAL models. `make setup`
installs promtool and trestle into .venv/validators; the schemas are vendored in
tests/data/validators. Where a tool is missing the test is skipped on a developer's box and
fails in CI, so a green CI run always means the validators ran.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import regex
from jsonschema import validators
from lxml import etree

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "validators"
VALIDATORS_VENV = Path(sys.prefix) / "validators"

TRESTLE_LOAD = """
import sys
from trestle.oscal.assessment_results import AssessmentResults
document = AssessmentResults.oscal_read(__import__("pathlib").Path(sys.argv[1]))
print(len(document.results), sum(len(r.findings or []) for r in document.results))
"""


def _missing(what: str) -> None:
    message = f"{what} not installed (make setup installs it into .venv/validators)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def promtool() -> str:
    found = VALIDATORS_VENV / "bin" / "promtool"
    if found.is_file():
        return str(found)
    on_path = shutil.which("promtool")
    if on_path is None:
        _missing("promtool")
    return str(on_path)


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    """`promtool check metrics` on the text: exit 0 and no output when it has no complaint."""
    return subprocess.run(
        [promtool(), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@cache
def _junit_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(DATA / "junit-10.xsd")))


def junit_errors(text: str) -> list[str]:
    """What Jenkins xUnit's junit-10.xsd rejects in the document (empty: valid)."""
    schema = _junit_schema()
    document = etree.fromstring(text.encode("utf-8"))
    if schema.validate(document):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Any
) -> Iterator[jsonschema.ValidationError]:
    """`pattern` with XML Schema's character classes (\\p{L}, \\p{N}) that NIST's schema uses."""
    if isinstance(instance, str) and not regex.search(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _oscal_validator() -> Any:
    schema = json.loads((DATA / "oscal_assessment-results_schema.json").read_text("utf-8"))
    checker = validators.extend(jsonschema.Draft7Validator, {"pattern": _pattern})
    return checker(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def oscal_errors(document: Any) -> list[str]:
    """What NIST's OSCAL 1.1.2 assessment-results schema rejects (empty: valid)."""
    return [
        f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in _oscal_validator().iter_errors(document)
    ]


def trestle_load(path: Path) -> subprocess.CompletedProcess[str]:
    """Load an assessment-results file with compliance-trestle's pydantic OSCAL models."""
    python = VALIDATORS_VENV / "bin" / "python"
    if (
        not python.is_file()
        or subprocess.run(
            [str(python), "-c", "import trestle"], capture_output=True, check=False
        ).returncode
    ):
        _missing("compliance-trestle")
    return subprocess.run(
        [str(python), "-c", TRESTLE_LOAD, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

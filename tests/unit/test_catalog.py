"""The catalog and the implementations must match both ways."""

from auditor.checks import all_checks
from auditor.checks.catalog import load_catalog


def test_every_catalog_control_is_implemented() -> None:
    missing = sorted(set(load_catalog()) - set(all_checks()))
    assert missing == [], f"catalog controls without a check: {missing}"


def test_every_check_is_in_the_catalog() -> None:
    unknown = sorted(set(all_checks()) - set(load_catalog()))
    assert unknown == [], f"checks for ids the catalog does not know: {unknown}"


def test_catalog_entries_are_complete() -> None:
    for control in load_catalog().values():
        assert control.id.startswith(control.family + "-")
        assert control.rationale and control.remediation and control.title
        assert {"soc2", "gdpr", "hipaa", "nist", "iso27001"} <= set(control.references), control.id
        assert set(control.engines) <= {"ollama", "llamacpp"}

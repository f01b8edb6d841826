"""The README is the user's contract: its control table and commands must stay true."""

from pathlib import Path

from auditor.checks.catalog import load_catalog

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_opens_with_the_two_commands() -> None:
    opening = README.split("\n## ", 1)[0]
    assert "make demo" in opening
    assert "make test" in opening


def test_every_control_is_in_the_readme_table_with_its_severity() -> None:
    for control in load_catalog().values():
        assert f"| {control.id} | {control.severity} |" in README, control.id

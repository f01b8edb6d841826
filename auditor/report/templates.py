"""The Jinja2 environment for the HTML and Markdown reports.

The templates live in the repository's top-level templates/ (the fleet playbook
renders them too). A wheel carries them inside the package as auditor/templates
(pyproject force-includes them); a source checkout reads them from the repo.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from auditor.report.escape import markdown_cell

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def template_dirs() -> list[Path]:
    """Where templates are looked up, installed copy first."""
    return [_PACKAGE_DIR / "templates", _PACKAGE_DIR.parent / "templates"]


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader([str(d) for d in template_dirs()]),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        undefined=StrictUndefined,  # a typo in a template fails the tests, not the reviewer
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = markdown_cell
    return env

"""The Jinja2 environment for the HTML and Markdown reports.

The templates live in the repository's top-level templates/ (the fleet playbook
renders them too). A wheel carries them inside the package as auditor/templates
(pyproject force-includes them); a source checkout reads them from the repo.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def template_dirs() -> list[Path]:
    """Where templates are looked up, installed copy first."""
    return [_PACKAGE_DIR / "templates", _PACKAGE_DIR.parent / "templates"]


# Backslash-escaping any ASCII punctuation is valid CommonMark/GFM; these are the
# characters that can start markup, HTML or an entity, or split a table cell.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|<>&#!~])")


def markdown_cell(value: object) -> str:
    """Text safe inside a GitHub-flavoured Markdown table cell or paragraph.

    Markdown viewers render inline HTML, so evidence such as "<script>" must not
    reach them raw; a "|" would split the cell and a newline would end the row.
    """
    text = _MD_SPECIAL.sub(r"\\\1", str(value))
    return "<br>".join(text.splitlines())


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

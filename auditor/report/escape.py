"""Making untrusted text (evidence read from the host) safe for each output format.

Evidence is whatever the audit saw: environment values, command lines, file
contents. It must be shown literally, never interpreted as markup by a viewer.
HTML needs no helper here: Jinja2's autoescape covers it.
"""

from __future__ import annotations

import re

# Backslash-escaping any ASCII punctuation is valid CommonMark/GFM; these are the
# characters that can start markup, HTML or an entity, or split a table cell.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|<>&#!~])")

# Characters XML 1.0 cannot carry at all (ElementTree would write them and the
# file would not parse); evidence read from /proc can contain them.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def escape_markdown(value: object) -> str:
    """Text that a Markdown viewer shows literally: no markup, no raw HTML."""
    return _MD_SPECIAL.sub(r"\\\1", str(value))


def markdown_cell(value: object) -> str:
    """Text safe inside a GitHub-flavoured Markdown table cell or paragraph.

    Markdown viewers render inline HTML, so evidence such as "<script>" must not
    reach them raw; a "|" would split the cell and a newline would end the row.
    """
    return "<br>".join(escape_markdown(value).splitlines())


def xml_text(text: str) -> str:
    """Text XML 1.0 can hold: characters it forbids become visible \\xNN escapes."""
    return _XML_ILLEGAL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def prometheus_label(value: str) -> str:
    """A label value in the exposition format: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

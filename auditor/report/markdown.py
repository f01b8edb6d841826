"""The Markdown report (GitHub-flavoured tables), for tickets and pull requests."""

from __future__ import annotations

from auditor.report import view
from auditor.report.model import Report
from auditor.report.templates import environment

TEMPLATE = "report.md.j2"


def render(report: Report) -> str:
    return environment().get_template(TEMPLATE).render(v=view.build(report))

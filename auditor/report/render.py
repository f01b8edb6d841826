"""Turn a Report into text in one of the supported formats.

Each format lives in its own module exposing `render(report) -> str`: pure, no I/O.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

from auditor.errors import UsageError
from auditor.fsutil import dumps_json
from auditor.report.model import Report, to_dict

Renderer = Callable[[Report], str]

# format name -> module in auditor.report that defines render(report) -> str
_FORMAT_MODULES: dict[str, str] = {
    "html": "html",
    "markdown": "markdown",
    "junit": "junit",
    "oscal": "oscal",
    "prometheus": "prometheus",
}

FILE_SUFFIXES: dict[str, str] = {
    "json": ".json",
    "html": ".html",
    "markdown": ".md",
    "junit": ".junit.xml",
    "oscal": ".oscal.json",
    "prometheus": ".prom",
}


def render_json(report: Report) -> str:
    return dumps_json(to_dict(report)) + "\n"


def available_formats() -> list[str]:
    found = ["json"]
    for name, module in _FORMAT_MODULES.items():
        if importlib.util.find_spec(f"auditor.report.{module}") is not None:
            found.append(name)
    return found


def renderer_for(fmt: str) -> Renderer:
    if fmt == "json":
        return render_json
    if fmt not in available_formats():
        raise UsageError(
            f"unknown report format {fmt!r} (choose from {', '.join(available_formats())})"
        )
    module = importlib.import_module(f"auditor.report.{_FORMAT_MODULES[fmt]}")
    renderer: Renderer = module.render
    return renderer


def render(report: Report, fmt: str) -> str:
    return renderer_for(fmt)(report)

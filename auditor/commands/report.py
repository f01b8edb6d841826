"""`offgrid report render|validate`: convert and check saved JSON reports.

A workstation keeps the JSON report (the one with a schema); a reviewer asks for
HTML, a CI system for JUnit, a GRC tool for OSCAL. `render` converts without
re-running the audit, `validate` proves a file is a well-formed offgrid report.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from auditor.console import Console
from auditor.exitcodes import ExitCode
from auditor.report.load import load_report, read_json
from auditor.report.render import available_formats, render
from auditor.report.validate import validate
from auditor.report.write import write_report

NAME = "report"
HELP = "Convert a saved JSON report to another format, or validate it against the schema."

Handler = Callable[[argparse.Namespace, Console], int]


def _render(args: argparse.Namespace, console: Console) -> int:
    report = load_report(args.report)
    if args.output is None:
        console.out(render(report, args.format))
    else:
        write_report(report, args.format, args.output)
        console.info(f"wrote {args.output}")
    return ExitCode.OK


def _validate(args: argparse.Namespace, console: Console) -> int:
    errors = validate(read_json(args.report))  # unreadable or not JSON: InputError, exit 2
    if errors:
        for error in errors:
            console.out(f"{args.report}: {error}")
        console.error(f"{args.report}: not a valid offgrid report ({len(errors)} problem(s))")
        return ExitCode.FAILED
    console.out(f"{args.report}: valid offgrid report")
    return ExitCode.OK


def register(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="report_action", metavar="ACTION", required=True)

    render_parser = actions.add_parser("render", help="write a saved JSON report in another format")
    render_parser.add_argument("report", type=Path, metavar="REPORT.json")
    render_parser.add_argument(
        "--format", "-f", required=True, choices=available_formats(), help="output format"
    )
    render_parser.add_argument(
        "--output", "-o", type=Path, help="file to write (atomically); default: stdout"
    )
    render_parser.set_defaults(report_handler=_render)

    validate_parser = actions.add_parser(
        "validate",
        help="check a JSON report against the schema (exit 0 valid, 1 invalid, 2 unreadable)",
    )
    validate_parser.add_argument("report", type=Path, metavar="REPORT.json")
    validate_parser.set_defaults(report_handler=_validate)


def run(args: argparse.Namespace, console: Console) -> int:
    handler: Handler = args.report_handler
    return handler(args, console)

"""`offgrid report render|validate|history|fleet|evidence`: convert, check, chain, summarize
and package reports.

A workstation keeps the JSON report (the one with a schema); a reviewer asks for
HTML, a CI system for JUnit, a GRC tool for OSCAL. `render` converts without
re-running the audit, `validate` proves a file is a well-formed offgrid report,
`history` keeps reports in a tamper-evident chain, `fleet` summarizes many hosts and
`evidence` packs a review period's histories for a reviewer.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from auditor.commands import _evidence, _history
from auditor.console import Console
from auditor.errors import UsageError
from auditor.exitcodes import ExitCode
from auditor.fsutil import atomic_write_text, preflight
from auditor.report.fleet import DEFAULT_MAX_AGE_HOURS, MAX_AGE_LIMIT_HOURS, aggregate
from auditor.report.fleet_format import FORMATS as FLEET_FORMATS
from auditor.report.fleet_format import render as render_fleet
from auditor.report.load import load_report, read_json, shape_guard
from auditor.report.render import available_formats, render
from auditor.report.validate import validate
from auditor.report.write import write_report

NAME = "report"
HELP = "Convert a saved JSON report to another format, or validate it against the schema."

Handler = Callable[[argparse.Namespace, Console], int]


def _render(args: argparse.Namespace, console: Console) -> int:
    if args.output is not None:
        preflight(args.output)
    report = load_report(args.report)
    with shape_guard(str(args.report)):
        text = render(report, args.format)
    if args.output is None:
        console.out(text)
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


def _fleet(args: argparse.Namespace, console: Console) -> int:
    if not 0 < args.max_age <= MAX_AGE_LIMIT_HOURS:
        raise UsageError(
            f"--max-age must be a positive number of hours up to {MAX_AGE_LIMIT_HOURS:g}, "
            f"not {args.max_age}"
        )
    if args.output is not None:
        preflight(args.output)
    fleet = aggregate(args.directory, max_age_hours=args.max_age)
    text = render_fleet(fleet, args.format)
    if args.output is None:
        console.out(text)
    else:
        atomic_write_text(args.output, text, mode=0o644)
        console.info(f"wrote {args.output}")
    console.info(f"fleet: {len(fleet.hosts)} host(s), {fleet.findings} finding(s)")
    return ExitCode.OK if fleet.verdict == "pass" else ExitCode.FAILED


def _register_fleet(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = actions.add_parser(
        "fleet",
        help="summarize the newest report of every host in DIR/<host>/*.json "
        "(exit 0 all pass and fresh, 1 findings)",
    )
    parser.add_argument("directory", type=Path, metavar="DIR")
    parser.add_argument("--format", "-f", choices=FLEET_FORMATS, default="html")
    parser.add_argument("--output", "-o", type=Path, help="file to write (atomically)")
    parser.add_argument(
        "--max-age",
        type=float,
        default=DEFAULT_MAX_AGE_HOURS,
        metavar="HOURS",
        help=f"a newest report older than this is stale (default {DEFAULT_MAX_AGE_HOURS:g})",
    )
    parser.set_defaults(report_handler=_fleet)


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
    _history.register(actions)
    _register_fleet(actions)
    _evidence.register(actions)


def run(args: argparse.Namespace, console: Console) -> int:
    handler: Handler = args.report_handler
    return handler(args, console)

"""`offgrid report evidence` (registered by commands/report.py): one pack per review period."""

from __future__ import annotations

import argparse
from pathlib import Path

from auditor import __version__
from auditor.checks.catalog import load_catalog
from auditor.console import Console
from auditor.errors import InputError
from auditor.exitcodes import ExitCode
from auditor.report.evidence import collect
from auditor.report.evidence_files import pack_files
from auditor.report.evidence_html import render_index
from auditor.report.evidence_pack import write_pack

EXIT_CODES = {"pass": ExitCode.OK, "fail": ExitCode.FAILED, "incomplete": ExitCode.INCOMPLETE}


def _evidence(args: argparse.Namespace, console: Console) -> int:
    for directory in args.histories:
        if not directory.is_dir():
            raise InputError(f"{directory}: no such history directory")
    catalog = load_catalog()
    titles = {cid: control.title for cid, control in catalog.items()}
    evidence = collect(args.histories, args.since, args.until, titles, args.allowed_signers)
    index = render_index(evidence, catalog, __version__)
    files = pack_files(evidence, catalog, __version__, index)
    out: Path = args.out or Path(f"evidence-{evidence.since}-{evidence.until}")
    top = f"offgrid-evidence-{evidence.since}-{evidence.until}"
    written = write_pack(out, files, top, evidence.until, args.ssh_key)
    console.out(f"wrote {written.directory}/ ({written.files} files)")
    console.out(f"wrote {written.tarball}  sha256 {written.tarball_sha256}")
    for finding in evidence.findings:
        console.info(f"{finding.kind.upper():9} {finding.host or '-':8} {finding.text}")
    console.out(
        f"period {evidence.since}..{evidence.until}: {len(evidence.hosts)} host(s), "
        f"{len(evidence.reports)} report(s), {len(evidence.findings)} finding(s), "
        f"verdict {evidence.verdict}"
    )
    return EXIT_CODES[evidence.verdict]


def register(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = actions.add_parser(
        "evidence",
        help="pack a review period's histories for a reviewer "
        "(exit 0 pass, 1 findings, 3 gaps or errors only)",
        description="Build one self-contained evidence pack for the nights SINCE..UNTIL "
        "(UTC dates, inclusive) from report histories: every report of the period, each "
        "history's verification and signatures, waivers in force, per-night status per host "
        "(a night without a report is a finding), a control x framework matrix, one OSCAL "
        "assessment-results and index.html; plus DIR.tar.gz and its sha256. Same inputs, "
        "same bytes.",
    )
    parser.add_argument("histories", type=Path, nargs="+", metavar="HISTORY_DIR")
    parser.add_argument("--since", required=True, metavar="YYYY-MM-DD", help="first night")
    parser.add_argument("--until", required=True, metavar="YYYY-MM-DD", help="last night")
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="pack directory (default evidence-SINCE-UNTIL)"
    )
    parser.add_argument(
        "--allowed-signers",
        type=Path,
        metavar="FILE",
        help="verify the histories' SSH signatures (an unsigned or badly signed head is a finding)",
    )
    parser.add_argument(
        "--ssh-key", type=Path, metavar="FILE", help="sign MANIFEST.sha256 (offgrid-evidence)"
    )
    parser.set_defaults(report_handler=_evidence)

"""`offgrid report history append|verify|repair|list|diff|sign` (see commands/report.py)."""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

from auditor import safeio
from auditor.console import Console
from auditor.errors import InputError, UsageError
from auditor.exitcodes import ExitCode
from auditor.report import history, sshsig
from auditor.report.diff import DEFAULT_THRESHOLD_PCT, diff_reports, format_json, format_text
from auditor.report.history import DEFAULT_HISTORY_DIR, Problem
from auditor.report.load import load_report, shape_guard
from auditor.report.model import Report


def _check_ssh_key(path: Path | None) -> None:
    """Before anything is written: a signing key that cannot be read would fail after the append."""
    if path is not None:
        safeio.read_bytes(path, 1024 * 1024)


def _append(args: argparse.Namespace, console: Console) -> int:
    _check_ssh_key(args.ssh_key)
    entry = history.append_file(args.dir, args.report, args.key)
    console.out(f"appended entry {entry.seq} ({entry.report}) head {entry.entry_hash}")
    if args.ssh_key is not None:
        path = sshsig.sign_head(args.dir, entry, args.ssh_key)
        console.info(f"signed the head: {path}")
    return ExitCode.OK


def _sign(args: argparse.Namespace, console: Console) -> int:
    entries = history.read_entries(args.dir)
    if not entries:
        raise InputError(f"{args.dir}: the history is empty, nothing to sign")
    path = sshsig.sign_head(args.dir, entries[-1], args.ssh_key)
    console.out(f"signed entry {entries[-1].seq}: {path}")
    return ExitCode.OK


def _head_hash(text: str | None) -> str | None:
    if text is None:
        return None
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise UsageError(f"--expect-head must be a 64-digit hex entry hash, not {text[:80]!r}")
    return text.lower()


def _repair(args: argparse.Namespace, console: Console) -> int:
    actions, entry = history.repair(args.dir, args.key)
    if not actions:
        console.out(f"{args.dir}: nothing to repair")
        return ExitCode.OK
    for action in actions:
        console.out(f"repaired: {action}")
    if entry is not None:
        console.out(f"recorded as entry {entry.seq} ({entry.report}) head {entry.entry_hash}")
    return ExitCode.OK


def _verify(args: argparse.Namespace, console: Console) -> int:
    result = history.verify(args.dir, args.key, _head_hash(args.expect_head))
    problems: list[Problem] = list(result.problems)
    notes = list(result.notes)
    if args.allowed_signers is not None:
        for item in sshsig.check_signatures(args.dir, result.entries, args.allowed_signers):
            if isinstance(item, Problem):
                problems.append(item)
            else:
                notes.append(item)
    for note in notes:
        console.info(note)
    if problems:
        for problem in problems:
            console.out(f"TAMPERED {problem.describe()}")
        console.error(f"{args.dir}: history has been tampered with ({len(problems)} problem(s))")
        return ExitCode.FAILED
    return _unproven(args, result, console)


def _unproven(args: argparse.Namespace, result: history.Verification, console: Console) -> int:
    """No problem found: intact, or what could not be checked (exit 3)."""
    head = result.head
    if head is None and result.pending is None:
        console.out(f"{args.dir}: empty history")
        return ExitCode.OK
    if result.key_problem is not None:
        console.out(
            f"UNVERIFIED {args.dir}: cannot check the HMAC ({result.key_problem}); "
            f"{len(result.entries)} entries are consistent, but whoever can write the directory "
            "could have rewritten all of them"
        )
        console.error(f"{args.dir}: cannot check the HMAC: the history is not proven intact")
        return ExitCode.INCOMPLETE
    if head is None or result.pending is not None:
        console.out(f"INCOMPLETE {args.dir}: {result.pending}")
        console.error(f"{args.dir}: an interrupted append awaits `offgrid report history repair`")
        return ExitCode.INCOMPLETE
    console.out(f"intact: {len(result.entries)} entries, head seq {head.seq} {head.entry_hash}")
    console.info(
        "a cut-off tail leaves a consistent shorter chain: record the head hash elsewhere "
        "and pass it back with --expect-head to detect that"
    )
    return ExitCode.OK


def _list(args: argparse.Namespace, console: Console) -> int:
    entries = history.read_entries(args.dir)
    if args.format == "json":
        console.out(json.dumps([e.__dict__ for e in entries], indent=2))
        return ExitCode.OK
    for e in entries:
        console.out(f"{e.seq:>6}  {e.timestamp}  {e.host}  finished {e.finished_at}  {e.report}")
    if not entries:
        console.info(f"{args.dir}: empty history")
    return ExitCode.OK


def _resolve(text: str, directory: Path) -> tuple[Report, str]:
    """A report file, or (when TEXT is a number and no such file exists) a history entry."""
    path = Path(text)
    if text.isdigit() and not path.exists():
        entry = history.find_entry(directory, int(text))
        return load_report(history.report_path(directory, entry)), f"entry {entry.seq}"
    return load_report(path), text


def _diff(args: argparse.Namespace, console: Console) -> int:
    threshold = args.threshold
    if not math.isfinite(threshold) or threshold < 0:
        raise UsageError(f"--threshold must be a non-negative percentage, not {threshold}")
    old, old_label = _resolve(args.old, args.dir)
    new, new_label = _resolve(args.new, args.dir)
    with shape_guard(f"{old_label} / {new_label}"):
        result = diff_reports(old, new, old_label, new_label, threshold)
    console.out(format_json(result) if args.format == "json" else format_text(result))
    return ExitCode.FAILED if result.regressions else ExitCode.OK


def _add_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_HISTORY_DIR, help=f"default {DEFAULT_HISTORY_DIR}"
    )


def _add_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key", type=Path, metavar="FILE", help="HMAC key (0600; default DIR/history.key)"
    )


def register(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = actions.add_parser("history", help="tamper-evident report history (hash chain)")
    sub = parser.add_subparsers(dest="history_action", metavar="ACTION", required=True)

    append = sub.add_parser("append", help="store a JSON report and chain it")
    append.add_argument("report", type=Path, metavar="REPORT.json")
    _add_dir(append)
    _add_key(append)
    append.add_argument("--ssh-key", type=Path, metavar="FILE", help="also SSH-sign the new head")
    append.set_defaults(report_handler=_append)

    verify = sub.add_parser(
        "verify",
        help="check the chain, HMACs and reports "
        "(exit 0 intact, 1 tampered, 3 not provable: no usable key or an interrupted append)",
    )
    _add_dir(verify)
    _add_key(verify)
    verify.add_argument("--expect-head", metavar="SHA256", help="a head hash recorded earlier")
    verify.add_argument(
        "--allowed-signers", type=Path, metavar="FILE", help="verify SSH signatures (head required)"
    )
    verify.set_defaults(report_handler=_verify)

    repair = sub.add_parser(
        "repair",
        help="finish or undo an interrupted append, recorded as a chain entry of its own",
    )
    _add_dir(repair)
    _add_key(repair)
    repair.set_defaults(report_handler=_repair)

    sign = sub.add_parser("sign", help="SSH-sign the current head (ssh-keygen -Y sign)")
    _add_dir(sign)
    sign.add_argument("--ssh-key", type=Path, metavar="FILE", required=True)
    sign.set_defaults(report_handler=_sign)

    listing = sub.add_parser("list", help="the entries, oldest first")
    _add_dir(listing)
    listing.add_argument("--format", choices=("text", "json"), default="text")
    listing.set_defaults(report_handler=_list)

    diff = sub.add_parser(
        "diff", help="what changed between two reports (exit 1 when something regressed)"
    )
    diff.add_argument("old", metavar="OLD", help="report file or history entry number")
    diff.add_argument("new", metavar="NEW", help="report file or history entry number")
    _add_dir(diff)
    diff.add_argument("--format", choices=("text", "json"), default="text")
    diff.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD_PCT,
        metavar="PCT",
        help=f"benchmark change worth showing, percent (default {DEFAULT_THRESHOLD_PCT:g})",
    )
    diff.set_defaults(report_handler=_diff)

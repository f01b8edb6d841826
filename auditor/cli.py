"""Command-line entry point: `offgrid <command> …`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import traceback
from collections.abc import Sequence
from typing import cast

from auditor import __version__, commands
from auditor.commands.interface import Command
from auditor.console import Console
from auditor.errors import OffgridError
from auditor.exitcodes import ExitCode


def _discover_commands() -> list[Command]:
    found = []
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name == "interface" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "run"):
            found.append(cast(Command, module))
    return found


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() owns every exit path."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _ParseError(f"{self.prog}: {message}")


class _ParseError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="offgrid",
        description="Provision, audit and benchmark an offline AI coding workstation.",
    )
    parser.add_argument("--version", action="version", version=f"offgrid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in _discover_commands():
        command_parser = sub.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.register(command_parser)
        command_parser.set_defaults(handler=command.run)
    return parser


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    console = console or Console()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _ParseError as exc:
        console.error(str(exc))
        return ExitCode.USAGE
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    if not getattr(args, "handler", None):
        console.out(parser.format_help())
        return ExitCode.USAGE
    return _dispatch(args, console)


def _dispatch(args: argparse.Namespace, console: Console) -> int:
    try:
        return int(args.handler(args, console))
    except OffgridError as exc:
        console.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        console.error("interrupted")
        return 130
    except OSError as exc:  # a file or directory the user named cannot be used: bad input
        where = f"{exc.filename}: " if exc.filename else ""
        console.error(f"{where}{exc.strerror or exc}")
        return ExitCode.USAGE
    except Exception as exc:  # a bug: its own exit code, never mistaken for a verdict
        return _crashed(exc, console)


def _crashed(exc: BaseException, console: Console) -> int:
    summary = " ".join(str(exc).split())[:300]
    console.error(
        f"internal error (exit {int(ExitCode.CRASH)}, no verdict): {type(exc).__name__}: {summary}"
    )
    console.traceback("".join(traceback.format_exception(exc)))
    return ExitCode.CRASH

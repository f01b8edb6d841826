"""Errors that end a command with a one-line message and a distinct exit code."""

from auditor.exitcodes import ExitCode


class OffgridError(Exception):
    """Base class: the message is shown to the user as is, without a traceback."""

    exit_code: ExitCode = ExitCode.USAGE


class UsageError(OffgridError):
    """The command line is wrong."""

    exit_code = ExitCode.USAGE


class InputError(OffgridError):
    """A file or value the user gave cannot be used (missing, malformed, unsafe)."""

    exit_code = ExitCode.USAGE


class IncompleteError(OffgridError):
    """Something needed to reach a verdict could not be read or reached."""

    exit_code = ExitCode.INCOMPLETE

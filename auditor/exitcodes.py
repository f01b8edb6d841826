"""Exit codes shared by every subcommand (documented in the README)."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # every evaluated control passed / the command did what was asked
    FAILED = 1  # a control failed, or a benchmark regressed
    USAGE = 2  # bad usage or bad input
    INCOMPLETE = 3  # a control could not be evaluated
    CRASH = 70  # offgrid itself failed (an unhandled error: a bug); never a verdict (EX_SOFTWARE)

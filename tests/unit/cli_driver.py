"""Run offgrid command lines in one process (inside a test's mount namespace), one JSON
line of result each: `python -m tests.unit.cli_driver '<json list of argv lists>'`.

With `--until-failure N ARGV…` the one command line is repeated until it fails (at most N
times), for filling a disk one append at a time.
"""

from __future__ import annotations

import io
import json
import sys

from auditor.cli import main
from auditor.console import Console


def run(argv: list[str]) -> dict[str, object]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, Console(stdout=out, stderr=err))
    return {"rc": int(code), "out": out.getvalue()[:400], "err": err.getvalue()}


def cli(args: list[str]) -> int:
    if args[0] == "--until-failure":
        limit, argv = int(args[1]), args[2:]
        count = 0
        while count < limit:
            result = run(argv)
            if result["rc"] != 0:
                break
            count += 1
        print(json.dumps({"succeeded": count, **result}))
        return 0
    for argv in json.loads(args[0]):
        print(json.dumps(run(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))

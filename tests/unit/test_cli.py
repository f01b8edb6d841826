import io

from auditor.cli import main
from auditor.console import Console


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def test_unknown_command_is_usage_error() -> None:
    code, _, err = _run(["no-such-command"])
    assert code == 2
    assert "offgrid: error:" in err
    assert "Traceback" not in err


def test_no_command_prints_help_and_usage_code() -> None:
    code, out, _ = _run([])
    assert code == 2
    assert "usage: offgrid" in out


def test_version() -> None:
    code, _, _ = _run(["--version"])
    assert code == 0

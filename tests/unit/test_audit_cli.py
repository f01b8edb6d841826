"""`offgrid audit` argument and config handling: bad input is exit 2 with one line."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from auditor.cli import main
from auditor.commands import audit as audit_command
from auditor.console import Console
from auditor.errors import InputError


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    audit_command.register(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(
    "argv",
    [
        ["audit", "--egress-probe", "127.0.0.1:80"],
        ["audit", "--egress-probe", "ollama.com:443"],
        ["audit", "--waivers", "/nonexistent/waivers.toml"],
        ["audit", "--format", "pdf"],
        ["audit", "--watch", "-1"],
        ["audit", "--engine", "vllm"],
        ["audit", "--engine-pid", "0"],
        ["audit", "--lock", "/nonexistent/offgrid.lock"],
        ["audit", "--config", "/nonexistent/offgrid.toml"],
        ["audit", "--output", "/nonexistent/dir/report.json"],
    ],
)
def test_bad_input_is_exit_2_without_traceback(argv: list[str]) -> None:
    code, out, err = _run(argv)
    assert code == 2, err
    assert out == ""
    assert "offgrid: error:" in err and "Traceback" not in err


def test_config_file_and_flags_override(tmp_path: Path) -> None:
    config = tmp_path / "offgrid.toml"
    config.write_text(
        'engine = "ollama"\nmax_exposure = 5\n[audit]\nwatch = 2\nide_users = ["dev"]\n'
        "[bench]\nruns = 3\n"
    )
    request = audit_command.build_request(_args("--config", str(config), "--watch", "0.5"))
    assert request.options.engine == "ollama"
    assert request.options.watch_seconds == 0.5  # the flag wins
    assert request.options.ide_users == ("dev",)
    assert request.options.max_exposure == 5.0
    assert request.options.egress_probe is None  # no default probe address, ever


@pytest.mark.parametrize(
    "text", ['colour = "red"\n', 'watch = "long"\n', "[audit\n", "full = 1\n", "audit = 3\n"]
)
def test_bad_config_is_input_error(tmp_path: Path, text: str) -> None:
    config = tmp_path / "offgrid.toml"
    config.write_text(text)
    with pytest.raises(InputError):
        audit_command.build_request(_args("--config", str(config)))


def test_nonexistent_engine_pid_is_exit_2() -> None:
    code, _, err = _run(["audit", "--engine-pid", "4194303"])  # above the default pid_max
    assert code == 2 and "no such process" in err

"""bench refuses to send prompts off the machine unless told to."""

from __future__ import annotations

import io

import pytest

from auditor.bench.endpoint import check_endpoint, is_loopback
from auditor.cli import main
from auditor.console import Console
from auditor.errors import InputError


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:11434", "http://127.9.8.7:1", "http://[::1]:8080", "http://localhost:11434"],
)
def test_loopback_endpoints_are_accepted(url: str) -> None:
    assert all(is_loopback(a) for a in check_endpoint(url, allow_remote=False))


@pytest.mark.parametrize(
    "url",
    [
        "http://192.0.2.10:11434",
        "https://[2001:db8::1]/",
        "http://0.0.0.0:11434",
        "http://[::ffff:192.0.2.1]:80",
    ],
)
def test_non_loopback_endpoints_are_refused(url: str) -> None:
    with pytest.raises(InputError, match="--allow-remote"):
        check_endpoint(url, allow_remote=False)
    assert check_endpoint(url, allow_remote=True)


def test_ipv4_mapped_loopback_counts_as_loopback() -> None:
    assert is_loopback("::ffff:127.0.0.1")


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def test_cli_refuses_a_remote_endpoint_with_exit_2_and_one_line() -> None:
    code, out, err = _run(
        ["bench", "--endpoint", "http://192.0.2.10:11434", "--api", "ollama", "--model", "m"]
    )
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "refusing to send benchmark prompts" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "--api", "ollama", "--model", "m"], "--endpoint"),
        (
            ["bench", "--endpoint", "ftp://127.0.0.1/", "--api", "ollama", "--model", "m"],
            "http(s) URL",
        ),
        (
            [
                "bench",
                "--endpoint",
                "http://127.0.0.1:1",
                "--api",
                "ollama",
                "--model",
                "m",
                "--runs",
                "0",
            ],
            "--runs",
        ),
        (
            [
                "bench",
                "--endpoint",
                "http://127.0.0.1:1",
                "--api",
                "ollama",
                "--model",
                "m",
                "--failure-threshold",
                "2",
            ],
            "fraction",
        ),
        (
            [
                "bench",
                "--endpoint",
                "http://127.0.0.1:1",
                "--api",
                "ollama",
                "--model",
                "m",
                "--categories",
                "poetry",
            ],
            "unknown category",
        ),
        (
            [
                "bench",
                "--endpoint",
                "http://127.0.0.1:1",
                "--api",
                "openai",
                "--model",
                "m",
                "--mode",
                "generate",
            ],
            "--mode for --api openai is one of chat, completions",
        ),
    ],
)
def test_bad_usage_is_one_line_exit_2(argv: list[str], message: str) -> None:
    code, _out, err = _run(argv)
    assert code == 2 and message in err and err.count("\n") == 1

"""Property tests: every reader offgrid has, fed generated hostile input.

The property is the same everywhere: a reader returns a value that is bounded (nesting
depth, integer size) and finite, or refuses with an InputError; nothing else escapes. Through
the CLI that means exit 2 (or the command's own verdict) with one line on stderr and never a
traceback. The generators produce what a hostile user writes: deep nesting, integers of
thousands of digits, NaN/Infinity spelled every way, wrong shapes at every path, invalid
UTF-8, truncations and random bytes.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from auditor import safeio
from auditor.bench import compare, crossover, tco, transport
from auditor.bench.openai import parse_sse_line
from auditor.checks.catalog import load_catalog
from auditor.checks.waivers import load_waivers
from auditor.cli import main
from auditor.commands.audit import load_config
from auditor.console import Console
from auditor.errors import InputError
from auditor.inventory import ide
from auditor.models import modelfile
from auditor.report import history
from auditor.report.render import available_formats
from tests.unit.report_variants import report_data

HOSTILE_NUMBERS = [
    "NaN", "-NaN", "Infinity", "-Infinity", "nan", "inf", "-inf", "+inf", "1e400", "-1e400",
    "1e-400", "1e-320", "9" * 5000, "-" + "9" * 4301, "1" + "0" * 310, "0x10", "1_000",
    "1.7976931348623157e309", "-0", "1e308", "4.9e-324",
]  # fmt: skip
SPLICES = [*HOSTILE_NUMBERS, "\x00", "\ud800", "]", "\\", '"']

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def hostile_json(draw: st.DrawFn) -> bytes:
    """JSON text that a hostile user could write, from valid to thoroughly broken."""
    text = json.dumps(draw(json_values))
    kind = draw(st.sampled_from(["plain", "number", "deep", "truncate", "bytes", "splice"]))
    if kind == "number":
        text = f'{{"a": [{draw(st.sampled_from(HOSTILE_NUMBERS))}], "b": {text}}}'
    elif kind == "deep":
        depth = draw(st.integers(min_value=60, max_value=200_000))
        opener = draw(st.sampled_from(["[", '{"a":', '[{"k":']))
        text = opener * depth + text
    elif kind == "truncate":
        text = text[: draw(st.integers(min_value=0, max_value=len(text)))]
    elif kind == "splice":
        at = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:at] + draw(st.sampled_from(SPLICES)) + text[at:]
    data = text.encode("utf-8", "surrogatepass")
    if kind == "bytes":
        data = draw(st.binary(max_size=200))
    return data


@st.composite
def hostile_toml(draw: st.DrawFn) -> bytes:
    value = draw(
        st.sampled_from(
            [*HOSTILE_NUMBERS, "[" * 300 + "]" * 300, "{a={b={c={}}}}", '"x"', "[1, 'a']", "true"]
        )
    )
    key = draw(st.sampled_from(["cost", "watts", "label", "hardware", "a.b.c", "'q'"]))
    table = draw(st.sampled_from(["", "[hardware]\n", "[[workload]]\n", "[power]\n", "[cloud]\n"]))
    text = f"{table}{key} = {value}\n"
    if draw(st.booleans()):
        text += draw(st.text(max_size=30))
    return text.encode("utf-8", "surrogatepass")


def _bounded(value: Any, depth: int = 0) -> bool:
    """What a reader may return: bounded nesting, float-sized integers, finite floats."""
    if depth > safeio.MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return all(_bounded(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return all(_bounded(v, depth + 1) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) < 10**safeio.MAX_INT_DIGITS
    return True


def _accepts_or_refuses(read: Callable[[], Any]) -> None:
    try:
        value = read()
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert _bounded(value)


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def _clean_exit(code: int, err: str, allowed: set[int]) -> None:
    assert code in allowed, err
    assert "Traceback" not in err and code != 70, err
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("offgrid: error:"), err


# ---- the parsers themselves --------------------------------------------------------------


@given(hostile_json())
def test_json_reader(data: bytes) -> None:
    _accepts_or_refuses(lambda: safeio.parse_json(data, "x.json"))


@given(hostile_toml())
def test_toml_reader(data: bytes) -> None:
    _accepts_or_refuses(lambda: safeio.parse_toml(data, "x.toml"))


@given(hostile_json())
def test_chain_line_reader(data: bytes) -> None:
    try:
        history.parse_line(data + b"\n")
    except ValueError as exc:
        assert "\n" not in str(exc)


@given(hostile_json())
def test_jsonc_settings_reader(data: bytes) -> None:
    def read() -> Any:
        try:
            return ide.parse_jsonc(safeio.decode(data, "settings.json"), "settings.json")
        except ValueError as exc:  # not an object: the caller records it as malformed
            raise InputError(str(exc)) from None

    _accepts_or_refuses(read)


@given(hostile_json(), st.sampled_from(["chat", "completions"]))
def test_sse_and_ndjson_line_readers(data: bytes, mode: str) -> None:
    # exactly what the request loop turns into a failed request (never a crash)
    caught = (transport.StreamProtocolError, TypeError, AttributeError, LookupError, ValueError,
              ArithmeticError)  # fmt: skip
    for line in (b"data: " + data, data):
        try:
            event = parse_sse_line(mode)(line)
            obj = transport.parse_json_line(data)
        except caught:
            continue
        assert event is None or isinstance(event.content, str)
        assert _bounded(obj)


@given(
    st.sampled_from(["temperature", "top_p", "num_ctx", "seed"]), st.sampled_from(HOSTILE_NUMBERS)
)
def test_modelfile_reader(name: str, value: str) -> None:
    try:
        parsed = modelfile.parse(f"FROM x\nPARAMETER {name} {value}\n")
    except InputError:
        return
    assert all(_bounded(v) for v in modelfile.parameters_as_json(parsed.parameters).values())


# ---- every file reader, from a file on disk ----------------------------------------------


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@given(hostile_toml())
def test_price_config_and_waiver_files(tmp_path: Path, data: bytes) -> None:
    ids = set(load_catalog())
    _accepts_or_refuses(lambda: tco.load_prices(_file(tmp_path, "p.toml", data)))
    _accepts_or_refuses(lambda: load_config(_file(tmp_path, "c.toml", data)))
    _accepts_or_refuses(lambda: load_waivers(_file(tmp_path, "w.toml", data), ids))


@given(hostile_json())
def test_json_files_of_every_kind(tmp_path: Path, data: bytes) -> None:
    path = _file(tmp_path, "x.json", data)
    ids = set(load_catalog())
    _accepts_or_refuses(lambda: crossover.load_cloud(path))
    _accepts_or_refuses(lambda: compare.load_section(path))
    _accepts_or_refuses(lambda: load_waivers(path, ids))


# ---- the wrong shape at every path of a real document ------------------------------------


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(document))
    node = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return copy


WRONG = [5, -1, "x", None, True, [], {}, [[[]]], {"a": {"b": {}}}, 1e300, 10**200, "1e-320"]
REPORT = report_data()
REPORT_PATHS = _paths(REPORT)


@given(st.sampled_from(REPORT_PATHS), st.sampled_from(WRONG), st.sampled_from(available_formats()))
def test_reports_of_the_wrong_shape_through_the_cli(
    tmp_path: Path, path: tuple[Any, ...], value: Any, fmt: str
) -> None:
    report = _file(tmp_path, "r.json", json.dumps(_replaced(REPORT, path, value)).encode())
    fleet = tmp_path / "fleet"
    (fleet / "ws-07").mkdir(parents=True, exist_ok=True)
    (fleet / "ws-07" / "r.json").write_bytes(report.read_bytes())
    for argv, allowed in (
        (["report", "render", str(report), "-f", fmt], {0, 2}),
        (["report", "fleet", str(fleet), "-f", "json"], {0, 1}),
        (["report", "history", "diff", str(report), str(report)], {0, 1, 2}),
        (["report", "validate", str(report)], {0, 1, 2}),
        (["bench", "compare", str(report), str(report)], {0, 1, 2}),
    ):
        code, _out, err = _cli(argv)
        _clean_exit(code, err, allowed)


@settings(max_examples=40)
@given(hostile_json())
def test_fleet_and_history_never_drop_or_crash(tmp_path: Path, data: bytes) -> None:
    fleet_dir = tmp_path / "fleet"
    (fleet_dir / "ws-01").mkdir(parents=True, exist_ok=True)
    (fleet_dir / "ws-01" / "r.json").write_bytes(data)
    code, out, err = _cli(["report", "fleet", str(fleet_dir), "-f", "json"])
    _clean_exit(code, err, {1})
    assert json.loads(out)["hosts"][0]["name"] == "ws-01"  # the host is a row, never dropped
    chain = tmp_path / "history"
    chain.mkdir(exist_ok=True)
    (chain / history.CHAIN_FILE).write_bytes(data + b"\n")
    for argv, allowed in (
        (["report", "history", "verify", "--dir", str(chain)], {0, 1, 3}),
        (["report", "history", "list", "--dir", str(chain)], {0, 2}),
        (
            [
                "report",
                "history",
                "append",
                str(fleet_dir / "ws-01" / "r.json"),
                "--dir",
                str(chain),
            ],
            {2},
        ),
    ):
        code, _out, err = _cli(argv)
        _clean_exit(code, err, allowed)


@given(hostile_json())
def test_pending_record_reader(tmp_path: Path, data: bytes) -> None:
    directory = tmp_path / "h"
    directory.mkdir(exist_ok=True)
    (directory / history.PENDING_FILE).write_bytes(data)
    try:
        history._read_pending(directory)
    except InputError as exc:
        assert "\n" not in str(exc)


def test_non_regular_inputs_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)  # nobody ever writes to it: reading would block forever
    (tmp_path / "dir.json").mkdir()
    for path in (fifo, tmp_path / "dir.json"):
        for argv in (
            ["report", "render", str(path), "-f", "html"],
            ["bench", "compare", str(path), str(path)],
            ["report", "history", "append", str(path), "--dir", str(tmp_path / "h")],
        ):
            code, _out, err = _cli(argv)
            _clean_exit(code, err, {2})


def test_a_sparse_file_is_refused_by_its_bytes_not_its_size(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(safeio.REPORT_LIMIT + 1)
    code, _out, err = _cli(["report", "render", str(big), "-f", "html"])
    _clean_exit(code, err, {2})
    assert "larger than" in err

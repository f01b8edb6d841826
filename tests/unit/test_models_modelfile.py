"""Modelfile parsing as `ollama create` does it: commands, quoting, typed parameters, errors."""

from pathlib import Path

import pytest

from auditor.errors import InputError
from auditor.models.gojson import Float32
from auditor.models.modelfile import load, parse

REPO = Path(__file__).resolve().parents[2]


def test_commands_are_case_insensitive_and_typed() -> None:
    parsed = parse(
        "from ./m.gguf\n"
        "Parameter num_ctx 8192\n"
        "PARAMETER temperature 0.1\n"
        "PARAMETER use_mmap false\n"
        "PARAMETER stop <|im_start|>\n"
        'PARAMETER stop "<|im_end|>"\n'
        "system Be brief.\n"
    )
    assert parsed.source == "./m.gguf"
    assert parsed.parameters == {
        "num_ctx": 8192,
        "temperature": Float32(0.1),
        "use_mmap": False,
        "stop": ["<|im_start|>", "<|im_end|>"],
    }
    assert parsed.system == "Be brief."


def test_triple_quoted_values_keep_newlines_and_inner_quotes() -> None:
    parsed = parse('FROM x\nTEMPLATE """line one\n  "two"\nthree"""\nSYSTEM """a"""\n')
    assert parsed.template == 'line one\n  "two"\nthree'
    assert parsed.system == "a"


def test_comments_blank_lines_and_last_single_value_wins() -> None:
    parsed = parse("# a comment\n\nFROM x\nSYSTEM first\n  # indented comment\nSYSTEM second\n")
    assert parsed.system == "second"


def test_messages_licenses_and_deprecated_parameters() -> None:
    parsed = parse(
        "FROM x\nMESSAGE user hello there\nMESSAGE assistant hi\n"
        'LICENSE "MIT"\nLICENSE """Apache\n2.0"""\nPARAMETER mirostat 2\n'
    )
    assert parsed.messages == (("user", "hello there"), ("assistant", "hi"))
    assert parsed.licenses == ("MIT", "Apache\n2.0")
    assert parsed.deprecated == ("mirostat",)
    assert "mirostat" not in parsed.parameters


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("PARAMETER num_ctx 1\n", "no FROM"),
        ("FROM x\nBOGUS value\n", "unknown command"),
        ("FROM x\nPARAMETER nope 1\n", "unknown parameter 'nope'"),
        ("FROM x\nPARAMETER num_ctx lots\n", "invalid int"),
        ("FROM x\nPARAMETER temperature warm\n", "invalid float"),
        ("FROM x\nPARAMETER use_mmap maybe\n", "invalid bool"),
        ('FROM x\nSYSTEM """never closed\n', "unterminated"),
        ("FROM x\nMESSAGE robot hi\n", "message role"),
        ("FROM x\nPARAMETER\n", "unknown command"),
    ],
)
def test_bad_modelfiles_are_input_errors(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse(text)


def test_error_names_the_line() -> None:
    with pytest.raises(InputError, match="line 3"):
        parse("FROM x\n\nPARAMETER num_ctx x\n")


def test_shipped_tuned_modelfile_is_the_seed_variant() -> None:
    parsed = load(REPO / "auditor/data/modelfiles/smollm2-135m-tuned.Modelfile")
    assert parsed.parameters["num_ctx"] == 8192
    assert parsed.parameters["num_gpu"] == 99
    assert parsed.parameters["temperature"] == Float32(0.1)
    assert parsed.template.startswith("{{- if .System }}<|im_start|>system")


def test_unreadable_modelfile_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read Modelfile"):
        load(tmp_path / "missing")

"""Parse an Ollama Modelfile the way `ollama create` does.

Commands are case-insensitive (FROM, PARAMETER, TEMPLATE, SYSTEM, LICENSE, MESSAGE,
ADAPTER, DRAFT, RENDERER, PARSER, REQUIRES); a value runs to the end of the line unless it
is quoted with `"` or `\"\"\"`, in which case it runs to the first line end after which
the whole value is properly closed. PARAMETER values are typed like Ollama's `api.Options`
(num_ctx int, temperature float32, stop a list that repeats accumulate, …), because the
params layer stores those JSON types and its digest depends on them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from auditor import safeio
from auditor.errors import InputError
from auditor.models.gojson import Float32

COMMANDS = frozenset(
    [
        "from",
        "license",
        "template",
        "system",
        "adapter",
        "draft",
        "renderer",
        "parser",
        "parameter",
        "message",
        "requires",
    ]
)
MESSAGE_ROLES = frozenset(["system", "user", "assistant"])

# api.Options and api.Runner in Ollama: JSON name -> Go kind.
PARAMETER_TYPES: Mapping[str, str] = {
    "num_keep": "int",
    "seed": "int",
    "num_predict": "int",
    "top_k": "int",
    "top_p": "float",
    "min_p": "float",
    "typical_p": "float",
    "repeat_last_n": "int",
    "temperature": "float",
    "repeat_penalty": "float",
    "presence_penalty": "float",
    "frequency_penalty": "float",
    "stop": "list",
    "num_ctx": "int",
    "num_batch": "int",
    "num_gpu": "int",
    "main_gpu": "int",
    "use_mmap": "bool",
    "num_thread": "int",
    "draft_num_predict": "int",
}
# Accepted by Ollama with a warning and dropped from the params layer.
DEPRECATED_PARAMETERS = frozenset(
    [
        "penalize_newline",
        "low_vram",
        "f16_kv",
        "logits_all",
        "vocab_only",
        "use_mlock",
        "mirostat",
        "mirostat_tau",
        "mirostat_eta",
    ]
)

ParamValue = int | bool | str | Float32 | list[str]


@dataclass(frozen=True)
class Command:
    name: str  # lower-case command, or the parameter's name for PARAMETER lines
    args: str
    line: int
    is_parameter: bool = False


@dataclass(frozen=True)
class Modelfile:
    source: str  # the FROM argument as written
    parameters: Mapping[str, ParamValue] = field(default_factory=dict)
    template: str = ""
    system: str = ""
    licenses: tuple[str, ...] = ()
    messages: tuple[tuple[str, str], ...] = ()  # (role, content)
    adapters: tuple[str, ...] = ()
    drafts: tuple[str, ...] = ()
    renderer: str = ""
    parser: str = ""
    requires: str = ""
    deprecated: tuple[str, ...] = ()  # parameters Ollama ignores with a warning

    def source_path(self, relative_to: Path) -> Path:
        path = Path(self.source).expanduser()
        return path if path.is_absolute() else relative_to / path


def _error(line: int, message: str) -> InputError:
    return InputError(f"Modelfile line {line}: {message}")


def _unquote(text: str) -> tuple[str, bool]:
    if text.startswith('"""'):
        if len(text) >= 6 and text.endswith('"""'):
            return text[3:-3], True
        return "", False
    if text.startswith('"'):
        if len(text) >= 2 and text.endswith('"'):
            return text[1:-1], True
        return "", False
    return text, True


def _read_value(text: str, pos: int, line: int) -> tuple[str, int, int]:
    """Read from pos to the first line end at which the stripped value is closed."""
    start_line, chars = line, list[str]()
    while True:
        if pos >= len(text) or text[pos] in "\r\n":
            value, closed = _unquote("".join(chars).strip())
            if closed:
                return value, pos, line
            if pos >= len(text):
                raise _error(start_line, "unterminated quoted value")
        char = text[pos]
        if char == "\n":
            line += 1
        if char.isprintable() or char in "\t\r\n":
            chars.append(char)
        pos += 1


def _read_word(text: str, pos: int, allowed: str) -> tuple[str, int]:
    end = pos
    while end < len(text) and text[end].isascii() and (text[end].isalnum() or text[end] in allowed):
        end += 1
    return text[pos:end], end


def _skip_blanks(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def tokenize(text: str) -> list[Command]:
    commands: list[Command] = []
    pos, line = 0, 1
    text = text.removeprefix("\ufeff")
    while pos < len(text):
        char = text[pos]
        if char in " \t\r\n#":
            if char == "#":
                newline = text.find("\n", pos)
                pos = len(text) if newline < 0 else newline
                continue
            line += char == "\n"
            pos += 1
            continue
        word, pos = _read_word(text, pos, "")
        if word.lower() not in COMMANDS or pos >= len(text) or text[pos] not in " \t":
            raise _error(
                line,
                f"unknown command {word or char!r}; expected one of "
                + ", ".join(sorted(c.upper() for c in COMMANDS)),
            )
        command, is_parameter, role = word.lower(), False, ""
        pos = _skip_blanks(text, pos)
        if command in ("parameter", "message"):
            allowed = "_" if command == "parameter" else ""
            qualifier, pos = _read_word(text, pos, allowed)
            if not qualifier or pos >= len(text) or text[pos] not in " \t":
                raise _error(line, f"{word.upper()} needs a name and a value")
            if command == "message" and qualifier not in MESSAGE_ROLES:
                raise _error(line, f"message role must be system, user or assistant: {qualifier!r}")
            command, is_parameter = (
                (qualifier, True) if command == "parameter" else (command, False)
            )
            role = qualifier if command == "message" else ""
        value, end, new_line = _read_value(text, _skip_blanks(text, pos), line)
        if role:
            value = f"{role}: {value}"
        commands.append(Command(command, value, line, is_parameter))
        pos, line = end, new_line
    return commands


_TRUE = frozenset(["1", "t", "T", "TRUE", "true", "True"])
_FALSE = frozenset(["0", "f", "F", "FALSE", "false", "False"])


FLOAT32_MAX = 3.4028234663852886e38


def _int64(raw: str) -> int:
    if len(raw) > 24:
        raise ValueError("too long")
    value = int(raw, 10)
    if not -(2**63) <= value < 2**63:
        raise ValueError("out of range")
    return value


def _finite_float32(raw: str) -> Float32:
    """A float32 that JSON can hold: NaN, Inf and values beyond float32's range are refused."""
    if len(raw) > 400:
        raise ValueError("too long")
    number = float(raw)
    if not math.isfinite(number) or abs(number) > FLOAT32_MAX:
        raise ValueError("not a finite float32")
    return Float32(number)


def typed_parameter(name: str, raw: str, line: int = 0) -> ParamValue:
    """One PARAMETER value converted to its Go type (strconv rules), or InputError."""
    kind = PARAMETER_TYPES.get(name)
    if kind is None:
        raise _error(line, f"unknown parameter {name!r}")
    try:
        if kind == "int":
            return _int64(raw)
        if kind == "float":
            return _finite_float32(raw)
    except ValueError:
        raise _error(line, f"invalid {kind} value {raw[:40]!r} for {name}") from None
    if kind == "bool":
        if raw not in _TRUE | _FALSE:
            raise _error(line, f"invalid bool value {raw!r} for {name}")
        return raw in _TRUE
    return [raw]


def parse(text: str) -> Modelfile:
    """A Modelfile's effective content, as `ollama create` would send it to the server."""
    parameters: dict[str, ParamValue] = {}
    singles: dict[str, str] = {}
    lists: dict[str, list[str]] = {"license": [], "adapter": [], "draft": [], "message": []}
    deprecated: list[str] = []
    source = None
    for command in tokenize(text):
        if command.is_parameter:
            if command.name in DEPRECATED_PARAMETERS:
                deprecated.append(command.name)
                continue
            value = typed_parameter(command.name, command.args, command.line)
            previous = parameters.get(command.name)
            if isinstance(previous, list) and isinstance(value, list):
                value = previous + value  # repeated `PARAMETER stop …` lines accumulate
            parameters[command.name] = value
        elif command.name == "from":
            source = source or command.args
        elif command.name in lists:
            lists[command.name].append(command.args)
        else:
            singles[command.name] = command.args  # TEMPLATE, SYSTEM, …: the last one wins
    if source is None:
        raise InputError("Modelfile has no FROM line")
    messages = tuple(_message(m) for m in lists["message"])
    return Modelfile(
        source=source,
        parameters=parameters,
        template=singles.get("template", ""),
        system=singles.get("system", ""),
        licenses=tuple(lists["license"]),
        messages=messages,
        adapters=tuple(lists["adapter"]),
        drafts=tuple(lists["draft"]),
        renderer=singles.get("renderer", ""),
        parser=singles.get("parser", ""),
        requires=singles.get("requires", "").removeprefix("v"),
        deprecated=tuple(deprecated),
    )


def _message(args: str) -> tuple[str, str]:
    role, _, content = args.partition(": ")
    return role, content


def load(path: Path) -> Modelfile:
    return parse(safeio.read_text(path, what="cannot read Modelfile"))


def parameters_as_json(parameters: Mapping[str, ParamValue]) -> dict[str, object]:
    """Parameters as plain JSON values (float32 rounded the way Ollama stores them)."""
    out: dict[str, object] = {}
    for key, value in parameters.items():
        out[key] = float(f"{value.rounded():.9g}") if isinstance(value, Float32) else value
    return out

"""JSON bytes exactly as Go's `json.NewEncoder(w).Encode(v)` writes them.

`ollama create` writes the params, messages and config blobs and the manifest with Go's
encoder; the blob digests depend on every byte, so a model built here only has the digests
Ollama would give it if the encoding matches: compact separators, map keys sorted, `<`, `>`,
`&`, U+2028 and U+2029 escaped, float32 values in their shortest form, a trailing newline.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Float32:
    """A value Go holds as float32 (Ollama's temperature, top_p, …)."""

    value: float

    def rounded(self) -> float:
        return float(struct.unpack("<f", struct.pack("<f", self.value))[0])


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _shortest(value: float, bits: int) -> str:
    """Shortest decimal that parses back to the same float (strconv 'g'-like, -1 precision)."""
    if bits == 64:
        return repr(value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if Float32(float(text)).rounded() == value:
            return text
    return repr(value)


def _float(value: float, bits: int) -> str:
    # Go's encoding/json: plain notation for 1e-6 <= |v| < 1e21, exponent notation outside,
    # with a minimal exponent ("1e-07" becomes "1e-7").
    if value == 0:
        return "0"
    text = _shortest(value, bits)
    mantissa, _, exponent = text.partition("e")
    if 1e-6 <= abs(value) < 1e21:
        if exponent:
            return _plain(mantissa, int(exponent))
        return mantissa.removesuffix(".0")
    power = int(exponent or "0")
    if power < 0 and power > -10:
        return f"{mantissa.removesuffix('.0')}e-{-power}"  # Go trims "e-07" to "e-7" only
    sign = "-" if power < 0 else "+"
    return f"{mantissa.removesuffix('.0')}e{sign}{abs(power):02d}"


def _plain(mantissa: str, exponent: int) -> str:
    negative = mantissa.startswith("-")
    digits = mantissa.lstrip("-")
    whole, _, frac = digits.partition(".")
    all_digits, point = whole + frac, len(whole) + exponent
    if point <= 0:
        text = "0." + "0" * -point + all_digits
    elif point >= len(all_digits):
        text = all_digits + "0" * (point - len(all_digits))
    else:
        text = all_digits[:point] + "." + all_digits[point:]
    return ("-" if negative else "") + text


def encode_value(value: object) -> str:  # noqa: PLR0911 - one return per JSON type
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Float32):
        return _float(value.rounded(), 32)
    if isinstance(value, float):
        return _float(value, 64)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        items = sorted(value.items()) if not isinstance(value, OrderedFields) else value.items()
        return "{" + ",".join(f"{_string(k)}:{encode_value(v)}" for k, v in items) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(encode_value(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__}")


class OrderedFields(dict[str, object]):
    """A Go struct: fields keep declaration order instead of being sorted like a map."""


def encode(value: object) -> bytes:
    """The bytes Go's json.Encoder.Encode writes, trailing newline included."""
    return (encode_value(value) + "\n").encode("utf-8")

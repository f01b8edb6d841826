"""The benchmark section between its records (auditor.bench.results) and JSON.

The one place either becomes the other: `report.model.to_dict` and
`bench --format section` write with `to_json`, `report.load` reads with
`benchmark_from_json`. Reading is strict: a missing field, an unknown one or a value of
the wrong type is an InputError naming its path, never a silently empty table.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import MISSING, Field, fields, is_dataclass
from enum import Enum
from typing import Any, Union, cast, get_args, get_origin, get_type_hints

from auditor.bench.results import BenchmarkSection
from auditor.errors import InputError

_NONE = type(None)


def _may_be_absent(spec: Field[Any]) -> bool:
    return spec.default is None


def to_json(value: object) -> Any:
    """The JSON form of a record tree: objects, lists, strings, numbers, null."""
    if is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for spec in fields(value):
            item = getattr(value, spec.name)
            if item is None and _may_be_absent(spec):
                continue
            out[spec.name] = to_json(item)
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [to_json(item) for item in value]
    return value


def benchmark_to_json(section: BenchmarkSection) -> dict[str, Any]:
    data: dict[str, Any] = to_json(section)
    return data


def benchmark_from_json(data: object) -> BenchmarkSection:
    """The section `benchmark_to_json` wrote; InputError if `data` is not one."""
    return cast(BenchmarkSection, decode(BenchmarkSection, data, "benchmark"))


def decode(kind: Any, data: object, where: str) -> Any:
    """`data` as an instance of the type `kind` (a record, tuple, mapping or scalar)."""
    origin = get_origin(kind)
    if origin is Union or origin is types.UnionType:
        return _union(get_args(kind), data, where)
    if is_dataclass(kind) and isinstance(kind, type):
        return _record(kind, data, where)
    if origin is tuple:
        return _tuple(get_args(kind), data, where)
    if origin is Mapping or origin is dict:
        return _mapping(get_args(kind)[1], data, where)
    return _scalar(kind, data, where)


def _union(options: tuple[Any, ...], data: object, where: str) -> Any:
    if data is None and _NONE in options:
        return None
    rest = [option for option in options if option is not _NONE]
    if len(rest) != 1:
        raise TypeError(f"{where}: only `X | None` unions are supported")
    return decode(rest[0], data, where)


def _record(kind: type[Any], data: object, where: str) -> Any:
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected an object")
    specs = {spec.name: spec for spec in fields(kind)}
    unknown = sorted(set(data) - set(specs))
    if unknown:
        raise InputError(f"{where}: unknown field {unknown[0]!r}")
    hints = get_type_hints(kind)
    values: dict[str, Any] = {}
    for name, spec in specs.items():
        if name in data:
            values[name] = decode(hints[name], data[name], f"{where}.{name}")
        elif spec.default is MISSING and spec.default_factory is MISSING:
            raise InputError(f"{where}: missing field {name!r}")
    return kind(**values)


def _tuple(items: tuple[Any, ...], data: object, where: str) -> tuple[Any, ...]:
    if not isinstance(data, list):
        raise InputError(f"{where}: expected an array")
    if len(items) == 2 and items[1] is Ellipsis:
        return tuple(decode(items[0], item, f"{where}[{i}]") for i, item in enumerate(data))
    if len(data) != len(items):
        raise InputError(f"{where}: expected {len(items)} items")
    pairs = enumerate(zip(items, data, strict=True))
    return tuple(decode(kind, item, f"{where}[{i}]") for i, (kind, item) in pairs)


def _mapping(value_kind: Any, data: object, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected an object")
    return {str(key): decode(value_kind, item, f"{where}.{key}") for key, item in data.items()}


def _scalar(kind: Any, data: object, where: str) -> Any:
    if kind is float and isinstance(data, int | float) and not isinstance(data, bool):
        return float(data)
    if kind is int and isinstance(data, int) and not isinstance(data, bool):
        return data
    if kind in (str, bool) and isinstance(data, kind):
        return data
    if isinstance(kind, type) and issubclass(kind, Enum):
        try:
            return kind(data)
        except ValueError as exc:
            raise InputError(f"{where}: {data!r} is not a known value") from exc
    if kind in (str, bool, int, float):
        raise InputError(f"{where}: expected {kind.__name__}, got {type(data).__name__}")
    raise TypeError(f"{where}: cannot decode type {kind!r}")

"""The helpers every section view shares: value formatting, key/value rows, record tables.

The audit sections have their view in auditor.report.audit_view, the benchmark its own in
auditor.report.benchmark_view; both read typed fields and use these to lay them out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

KeyValues = tuple[tuple[str, str], ...]
MISSING = "\N{EN DASH}"  # shown where a value is absent


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Block:
    """A free-form part: scalar facts, plus its lists of records as tables."""

    facts: KeyValues
    tables: tuple[tuple[str, Table], ...]

    def __bool__(self) -> bool:
        return bool(self.facts or self.tables)


def format_number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def format_value(value: Any) -> str:
    """A value as a reviewer reads it: numbers rounded, lists joined, JSON otherwise."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, str):
        return value
    return _format_collection(value)


def _format_collection(value: Any) -> str:
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {format_value(v)}" for k, v in value.items()) or MISSING
    if isinstance(value, Sequence) and not any(isinstance(v, Mapping | list) for v in value):
        return ", ".join(format_value(v) for v in value) or MISSING
    return json.dumps(value, sort_keys=True, default=str)


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def key_values(data: Any, skip: Sequence[str] = ()) -> KeyValues:
    """Flatten a free-form mapping into (dotted key, text) rows."""
    if not isinstance(data, Mapping):
        return ()
    rows: list[tuple[str, str]] = []
    for key, value in data.items():
        if key in skip:
            continue
        if isinstance(value, Mapping) and value:
            rows.extend((f"{key}.{sub}", text) for sub, text in key_values(value))
        else:
            rows.append((str(key), format_value(value)))
    return tuple(rows)


def records_table(records: Sequence[Mapping[str, Any]]) -> Table:
    header = tuple(dict.fromkeys(str(k) for record in records for k in record))
    rows = tuple(tuple(format_value(record.get(k)) for k in header) for record in records)
    return Table(header=header, rows=rows)


def split_records(data: Any, prefix: str = "") -> tuple[KeyValues, tuple[tuple[str, Table], ...]]:
    """Like key_values, but lists of records (at any depth) become tables of their own."""
    if not isinstance(data, Mapping):
        return (), ()
    rows: list[tuple[str, str]] = []
    tables: list[tuple[str, Table]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if _is_records(value):
            tables.append((name, records_table(value)))
        elif isinstance(value, Mapping) and value:
            sub_rows, sub_tables = split_records(value, f"{name}.")
            rows.extend(sub_rows)
            tables.extend(sub_tables)
        else:
            rows.append((name, format_value(value)))
    return tuple(rows), tuple(tables)


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [item for item in value if isinstance(item, Mapping)]

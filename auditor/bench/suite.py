"""The versioned prompt suite: `auditor/data/bench_suite/*.toml`, one file per category.

Prompts are data so the suite can change without code changes, and its version goes
into every result: figures from different suite versions are not comparable.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from auditor.errors import InputError

SUITE_PACKAGE = "auditor.data"
SUITE_DIR = "bench_suite"


@dataclass(frozen=True)
class Prompt:
    id: str
    language: str
    text: str


@dataclass(frozen=True)
class Category:
    name: str
    title: str
    target_tokens: tuple[int, int]
    prompts: tuple[Prompt, ...]

    @property
    def max_tokens(self) -> int:
        """num_predict / max_tokens: the top of the target range caps every request."""
        return self.target_tokens[1]


@dataclass(frozen=True)
class Suite:
    name: str
    version: str
    categories: tuple[Category, ...]

    def category(self, name: str) -> Category:
        for category in self.categories:
            if category.name == name:
                return category
        raise InputError(f"unknown category {name!r} (suite has {', '.join(self.names)})")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.categories)

    def select(self, names: Sequence[str] | None) -> tuple[Category, ...]:
        if not names:
            return self.categories
        return tuple(self.category(name) for name in names)


def _read(name: str) -> dict[str, Any]:
    node = resources.files(SUITE_PACKAGE).joinpath(SUITE_DIR).joinpath(name)
    return tomllib.loads(node.read_text("utf-8"))


def _category(raw: dict[str, Any]) -> Category:
    low, high = (int(v) for v in raw["target_tokens"])
    if not 0 < low <= high:
        raise ValueError(f"category {raw['name']}: bad target_tokens {raw['target_tokens']}")
    prompts = tuple(Prompt(p["id"], p["language"], p["text"]) for p in raw["prompts"])
    if not prompts:
        raise ValueError(f"category {raw['name']} has no prompts")
    return Category(raw["name"], raw["title"], (low, high), prompts)


@cache
def load_suite() -> Suite:
    index = _read("suite.toml")
    categories = tuple(_category(_read(f"{name}.toml")) for name in index["categories"])
    return Suite(index["name"], index["version"], categories)

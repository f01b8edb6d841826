"""OG-VUL: the engine's version against the offline known-vulnerability table."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from auditor.checks._common import require_engine
from auditor.checks.interface import check
from auditor.inventory.interface import EngineFacts, Facts
from auditor.inventory.profiles import profile
from auditor.verdicts import CannotEvaluate, Finding, Status, finding


@dataclass(frozen=True)
class KnownVulnerability:
    product: str
    id: str
    affected: str
    fixed: str
    summary: str
    source: str
    verified: bool


@cache
def load_table() -> tuple[KnownVulnerability, ...]:
    text = resources.files("auditor.data").joinpath("cves.toml").read_text("utf-8")
    return tuple(KnownVulnerability(**entry) for entry in tomllib.loads(text)["cve"])


Version = tuple[int, ...]


def parse_version(text: str) -> Version:
    """ "0.1.34", "v0.12.0-rc1" (→ 0.12.0), "b4882" (a llama.cpp build) → comparable tuple."""
    match = re.match(r"^[vb]?(\d+(?:\.\d+)*)", text.strip())
    if match is None:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(part) for part in match.group(1).split("."))


def _pad(version: Version, width: int) -> Version:
    return version + (0,) * (width - len(version))


def in_range(version: str, affected: str) -> bool:
    """Whether version satisfies every clause of a range such as ">=b4882,<=b9058"."""
    current = parse_version(version)
    for clause in (c.strip() for c in affected.split(",") if c.strip()):
        match = re.match(r"^(<=|>=|<|>|==)\s*(.+)$", clause)
        if match is None:
            raise ValueError(f"bad range clause {clause!r}")
        bound = parse_version(match.group(2))
        width = max(len(current), len(bound))
        left, right = _pad(current, width), _pad(bound, width)
        holds = {
            "<": left < right, "<=": left <= right, ">": left > right,
            ">=": left >= right, "==": left == right,
        }[match.group(1)]  # fmt: skip
        if not holds:
            return False
    return True


def product_of(engine: EngineFacts) -> str:
    """The product name the vulnerability table uses for this engine at this version."""
    return profile(engine.kind).product(engine.version or "")


@check("OG-VUL-01")
def engine_version_not_vulnerable(facts: Facts) -> Finding:
    engine = require_engine(facts, running=False)
    if engine.version is None:
        raise CannotEvaluate(f"the {engine.kind} engine's version is unknown")
    product = product_of(engine)
    entries = [v for v in load_table() if v.product == product]
    try:
        hits = [v for v in entries if in_range(engine.version, v.affected)]
    except ValueError as exc:
        return finding(Status.ERROR, f"cannot compare version {engine.version!r}: {exc}")
    evidence = [("version", f"{product} {engine.version}"), ("table entries", str(len(entries)))]
    for hit in hits:
        note = "" if hit.verified else " (fixed version unconfirmed)"
        evidence.append(
            (hit.id, f"{hit.summary} affected {hit.affected}, fixed {hit.fixed or 'none'}{note}; "
             f"{hit.source}")
        )  # fmt: skip
    if hits:
        return finding(
            Status.FAIL,
            f"{product} {engine.version} is affected by {', '.join(h.id for h in hits)}",
            evidence,
        )
    return finding(
        Status.PASS,
        f"{product} {engine.version}: no known vulnerability in the table",
        evidence,
    )

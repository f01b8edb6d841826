"""OG-VUL: the engine's version against the known-vulnerability table, and that table's age."""

from __future__ import annotations

from datetime import date, datetime

from auditor.checks._common import require_engine
from auditor.checks.interface import check
from auditor.inventory.interface import EngineFacts, Facts
from auditor.inventory.profiles import profile
from auditor.models.vulnbundle import VulnSelection
from auditor.models.vulndb import KnownVulnerability, parse_version
from auditor.verdicts import CannotEvaluate, Finding, Status, finding

__all__ = ["parse_version", "product_of"]


def product_of(engine: EngineFacts) -> str:
    """The product name the vulnerability table uses for this engine at this version."""
    return profile(engine.kind).product(engine.version or "")


def _selection(facts: Facts) -> VulnSelection:
    if facts.vulnerabilities is None:
        raise CannotEvaluate("the known-vulnerability table was not loaded")
    return facts.vulnerabilities


def _table_evidence(selection: VulnSelection) -> list[tuple[str, str]]:
    table = selection.table
    evidence = [("table", f"{table.origin} table of {table.date} ({table.source})")]
    if selection.kept_from_older:
        evidence.append(("kept", f"{selection.kept_from_older} entries of the older table"))
    if selection.bundle_problem:
        evidence.append(("bundle table not used", selection.bundle_problem))
    return evidence


def _fix_text(entry: KnownVulnerability) -> str:
    """The fixed version as far as it is known, never implying a clean upgrade path."""
    if not entry.fixed:
        return "no fixed version named (fixed version unconfirmed)"
    if entry.verified and entry.reviewed:
        return f"fixed {entry.fixed}"
    if entry.verified:
        return f"fixed {entry.fixed} as the OSV entry states (not reviewed against the vendor)"
    return f"fixed {entry.fixed} per the table, but the fixed version is unconfirmed"


def _sources(entry: KnownVulnerability) -> str:
    return ", ".join(entry.sources or (entry.source,))


def _hit_text(hit: KnownVulnerability) -> str:
    note = f" ({hit.note})" if hit.fix_unconfirmed and hit.note else ""
    return f"{hit.summary} affected {hit.affected}, {_fix_text(hit)}{note}; {_sources(hit)}"


def _past_unconfirmed(
    entries: tuple[KnownVulnerability, ...], version: str
) -> list[KnownVulnerability]:
    """Entries the version is past only by a bound the vendor has not confirmed as a fix."""
    return [e for e in entries if e.fix_unconfirmed and e.past_range(version)]


def _unconfirmed_text(entry: KnownVulnerability, version: str) -> str:
    bound = entry.fixed or entry.affected
    return (
        f"{version} is past {bound}, but the fixed version is unconfirmed: not shown to be "
        f"fixed, only not listed as affected ({entry.note or entry.summary}); {_sources(entry)}"
    )


@check("OG-VUL-01")
def engine_version_not_vulnerable(facts: Facts) -> Finding:
    engine = require_engine(facts, running=False)
    if engine.version is None:
        raise CannotEvaluate(f"the {engine.kind} engine's version is unknown")
    selection = _selection(facts)
    product = product_of(engine)
    entries = selection.table.for_product(product)
    try:
        hits = [v for v in entries if v.affects(engine.version)]
    except ValueError as exc:
        return finding(Status.ERROR, f"cannot compare version {engine.version!r}: {exc}")
    evidence = [
        ("version", f"{product} {engine.version}"),
        ("table entries", str(len(entries))),
        *_table_evidence(selection),
    ]
    evidence += [(hit.id, _hit_text(hit)) for hit in hits]
    if hits:
        return finding(
            Status.FAIL,
            f"{product} {engine.version} is affected by {', '.join(h.id for h in hits)}",
            evidence,
        )
    doubtful = _past_unconfirmed(entries, engine.version)
    evidence += [
        (f"{e.id} (fix unconfirmed)", _unconfirmed_text(e, engine.version)) for e in doubtful
    ]
    summary = f"{product} {engine.version}: no known vulnerability in the table"
    if doubtful:
        summary += (
            f"; past {len(doubtful)} {'entry' if len(doubtful) == 1 else 'entries'} only by a "
            "fixed version unconfirmed by the vendor "
            f"({', '.join(e.id for e in doubtful)})"
        )
    return finding(Status.PASS, summary, evidence)


def _age_days(table_date: str, collected_at: str) -> int:
    return (datetime.fromisoformat(collected_at).date() - date.fromisoformat(table_date)).days


@check("OG-VUL-02")
def vulnerability_table_is_recent(facts: Facts) -> Finding:
    selection = _selection(facts)
    limit = facts.options.max_vuln_age_days
    age = _age_days(selection.table.date, facts.collected_at)
    evidence = [
        *_table_evidence(selection),
        ("wheel table", selection.wheel_date),
        ("bundle table", selection.bundle_date or "none pinned in the lock"),
        ("age", f"{age} days (limit {limit})"),
    ]
    unconfirmed = [e.id for e in selection.table.entries if e.fix_unconfirmed and not e.withdrawn]
    evidence.append((
        "fixed version unconfirmed",
        f"{len(unconfirmed)} entries: {', '.join(unconfirmed)}" if unconfirmed else "none",
    ))  # fmt: skip
    if selection.bundle_problem:
        return finding(
            Status.FAIL,
            f"the bundle's vulnerability table cannot be trusted: {selection.bundle_problem}",
            evidence,
        )
    if age > limit:
        return finding(
            Status.FAIL,
            f"the vulnerability table in use is {age} days old (limit {limit})",
            evidence,
        )
    return finding(
        Status.PASS,
        f"the {selection.table.origin}'s vulnerability table of {selection.table.date} "
        f"is {age} days old (limit {limit})",
        evidence,
    )

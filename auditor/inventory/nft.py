"""nftables rules that scope egress to a user (`meta skuid`), read from `nft -j list ruleset`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any

from auditor.inventory.interface import NftRule

_VERDICTS = ("drop", "reject", "accept")


def _describe(expr: Mapping[str, Any]) -> str:
    """A short human rendering of one expression of a rule."""
    if "match" in expr:
        match = expr["match"]
        left, right = match.get("left", {}), match.get("right")
        if isinstance(left, dict) and "meta" in left:
            left_text = f"meta {left['meta'].get('key')}"
        elif isinstance(left, dict) and "payload" in left:
            payload = left["payload"]
            left_text = f"{payload.get('protocol')} {payload.get('field')}"
        else:
            left_text = json.dumps(left, sort_keys=True)
        return f"{left_text} {match.get('op', '==')} {json.dumps(right, sort_keys=True)}"
    if "log" in expr:
        log = expr["log"] or {}
        return f"log prefix {json.dumps(log.get('prefix', ''))} group {log.get('group', '-')}"
    if "counter" in expr:
        counter = expr["counter"] or {}
        return f"counter packets {counter.get('packets', 0)} bytes {counter.get('bytes', 0)}"
    for verdict in _VERDICTS:
        if verdict in expr:
            return verdict
    return json.dumps(expr, sort_keys=True)


def _skuid(exprs: Iterable[Mapping[str, Any]]) -> str | None:
    for expr in exprs:
        match = expr.get("match")
        if not isinstance(match, dict) or match.get("op", "==") not in ("==", "in"):
            continue
        left = match.get("left")
        if isinstance(left, dict) and left.get("meta", {}).get("key") == "skuid":
            right = match.get("right")
            return str(right) if not isinstance(right, dict | list) else json.dumps(right)
    return None


def rule_from_json(rule: Mapping[str, Any]) -> NftRule:
    exprs: list[Mapping[str, Any]] = list(rule.get("expr", []))
    counter = next((e["counter"] or {} for e in exprs if "counter" in e), None)
    verdict = next((v for e in exprs for v in _VERDICTS if v in e), None)
    log = next((e["log"] or {} for e in exprs if "log" in e), None)
    group = log.get("group") if isinstance(log, dict) else None
    return NftRule(
        family=str(rule.get("family", "")),
        table=str(rule.get("table", "")),
        chain=str(rule.get("chain", "")),
        handle=rule.get("handle"),
        comment=rule.get("comment"),
        skuid=_skuid(exprs),
        verdict=verdict,
        packets=int(counter.get("packets", 0)) if counter is not None else None,
        bytes=int(counter.get("bytes", 0)) if counter is not None else None,
        text=" ".join(_describe(e) for e in exprs),
        log_group=group if isinstance(group, int) else None,
    )


_COUNTER = re.compile(r"counter packets \d+ bytes \d+")


def table_digest(rules: Iterable[NftRule]) -> str:
    """sha256 of rules' chains and texts without their counters: what a reload would change."""
    lines = (f"{r.chain}: {_COUNTER.sub('counter', r.text)}" for r in rules)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def parse_ruleset(text: str) -> tuple[NftRule, ...]:
    """Every rule that matches a socket owner (skuid), from `nft -j list ruleset` output,
    with its table's handle and the digest of the table's owner-scoped rules."""
    data = json.loads(text) if text.strip() else {"nftables": []}
    rules = []
    tables: dict[tuple[str, str], int] = {}
    for item in data.get("nftables", []):
        table = item.get("table")
        if isinstance(table, dict) and isinstance(table.get("handle"), int):
            tables[(str(table.get("family", "")), str(table.get("name", "")))] = table["handle"]
        if "rule" in item:
            rule = rule_from_json(item["rule"])
            if rule.skuid is not None:
                rules.append(rule)
    digests = {
        key: table_digest(r for r in rules if (r.family, r.table) == key)
        for key in {(r.family, r.table) for r in rules}
    }
    return tuple(
        dataclasses.replace(
            r,
            table_handle=tables.get((r.family, r.table)),
            table_digest=digests[(r.family, r.table)],
        )
        for r in rules
    )


def read_ruleset(timeout_s: float = 10.0) -> tuple[tuple[NftRule, ...] | None, str | None]:
    """(rules, None) or (None, why the ruleset could not be read)."""
    nft = shutil.which("nft")
    if nft is None:
        return None, "nft is not installed"
    try:
        done = subprocess.run(
            [nft, "-j", "list", "ruleset"], capture_output=True, text=True,
            timeout=timeout_s, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"nft failed: {exc}"
    if done.returncode != 0:
        return None, f"nft -j list ruleset: {done.stderr.strip() or f'exit {done.returncode}'}"
    try:
        return parse_ruleset(done.stdout), None
    except (ValueError, KeyError, TypeError) as exc:
        return None, f"nft printed unparsable JSON: {exc}"

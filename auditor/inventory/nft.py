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

from auditor.inventory.interface import NatRule, NftRule

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
    for nat in ("dnat", "redirect"):
        if nat in expr:
            target = expr[nat] or {}
            address, port = target.get("addr", ""), target.get("port")
            where = address if isinstance(address, str) else json.dumps(address, sort_keys=True)
            suffix = "" if port is None else f":{json.dumps(port, sort_keys=True)}"
            return f"{nat} to {where}{suffix}"
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
    prefix = log.get("prefix") if isinstance(log, dict) else None
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
        log_prefix=prefix if isinstance(prefix, str) else None,
    )


_COUNTER = re.compile(r"counter packets \d+ bytes \d+")


def table_digest(rules: Iterable[NftRule]) -> str:
    """sha256 of rules' chains and texts without their counters: what a reload would change."""
    lines = (f"{r.chain}: {_COUNTER.sub('counter', r.text)}" for r in rules)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def parse_ruleset(text: str, owner_scoped: bool = True) -> tuple[NftRule, ...]:
    """Every rule that matches a socket owner (skuid), from `nft -j list ruleset` output,
    with its table's handle and the digest of the table's owner-scoped rules.

    `owner_scoped` False keeps every rule: in a sealed engine's own namespace everything
    sent is the engine's, and its rules match no owner."""
    data = json.loads(text) if text.strip() else {"nftables": []}
    rules = []
    tables: dict[tuple[str, str], int] = {}
    for item in data.get("nftables", []):
        table = item.get("table")
        if isinstance(table, dict) and isinstance(table.get("handle"), int):
            tables[(str(table.get("family", "")), str(table.get("name", "")))] = table["handle"]
        if "rule" in item:
            rule = rule_from_json(item["rule"])
            if rule.skuid is not None or not owner_scoped:
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


def _list_ruleset(timeout_s: float) -> tuple[str | None, str | None]:
    """(the JSON text of `nft -j list ruleset`, None) or (None, why it could not be read)."""
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
    return done.stdout, None


def read_ruleset(
    timeout_s: float = 10.0, owner_scoped: bool = True
) -> tuple[tuple[NftRule, ...] | None, str | None]:
    """(rules, None) or (None, why the ruleset could not be read). `nft` runs in the
    calling thread's network namespace (a child inherits it)."""
    text, error = _list_ruleset(timeout_s)
    if text is None:
        return None, error
    try:
        return parse_ruleset(text, owner_scoped), None
    except (ValueError, KeyError, TypeError) as exc:
        return None, f"nft printed unparsable JSON: {exc}"


def read_nat(timeout_s: float = 10.0) -> tuple[tuple[NatRule, ...] | None, str | None]:
    """(destination-NAT rules, None) or (None, why the ruleset could not be read).

    iptables-nft's rules are part of the same ruleset, so they are listed here too.
    """
    text, error = _list_ruleset(timeout_s)
    if text is None:
        return None, error
    try:
        return parse_nat(text), None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return None, f"nft printed unparsable JSON: {exc}"


def _ports(right: object) -> tuple[tuple[int, int], ...] | None:
    """A dport match's right side as port ranges; None when it is not readable."""
    if isinstance(right, int):
        return ((right, right),)
    if isinstance(right, dict) and "range" in right:
        low, high = right["range"]
        return ((int(low), int(high)),)
    if isinstance(right, dict) and "set" in right:
        ranges: list[tuple[int, int]] = []
        for item in right["set"]:
            part = _ports(item)
            if part is None:
                return None
            ranges += part
        return tuple(ranges)
    return None


_ANY_PORT: tuple[tuple[int, int], ...] = ((0, 65535),)


def _nat_matches(
    exprs: Iterable[Mapping[str, Any]],
) -> tuple[tuple[tuple[int, int], ...] | None, str | None]:
    """(destination port ranges, destination address) the rule matches (== only)."""
    dports: tuple[tuple[int, int], ...] | None = None
    daddr = None
    for expr in exprs:
        match = expr.get("match")
        if not isinstance(match, dict) or match.get("op", "==") not in ("==", "in"):
            continue
        left = match.get("left")
        payload = left.get("payload") if isinstance(left, dict) else None
        if not isinstance(payload, dict):
            continue
        if payload.get("field") == "dport":
            dports = _ports(match.get("right")) or _ANY_PORT
        elif payload.get("field") == "daddr" and isinstance(match.get("right"), str):
            daddr = str(match["right"])
    return dports, daddr


def _nat_target(exprs: Iterable[Mapping[str, Any]]) -> tuple[str, object, object, bool] | None:
    """(action, address, port, opaque) of the rule's NAT statement, if it has one."""
    for expr in exprs:
        if "dnat" in expr:
            target = expr["dnat"] or {}
            address, port = target.get("addr"), target.get("port")
            opaque = not isinstance(address, str | None) or not isinstance(port, int | None)
            return "dnat", address, port, opaque
        if "redirect" in expr:
            port = (expr["redirect"] or {}).get("port")
            return "redirect", None, port, not isinstance(port, int | None)
        xt = expr.get("xt")
        if isinstance(xt, dict) and xt.get("type") == "target" and xt.get("name") == "DNAT":
            return "xt DNAT", None, None, True
    return None


def _hooks(items: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str], str]:
    return {
        (str(c.get("family")), str(c.get("table")), str(c.get("name"))): str(c["hook"])
        for item in items
        if isinstance(c := item.get("chain"), dict) and "hook" in c
    }


def parse_nat(text: str) -> tuple[NatRule, ...]:
    """Every destination-NAT rule, from `nft -j list ruleset` output."""
    data = json.loads(text) if text.strip() else {"nftables": []}
    items: list[Mapping[str, Any]] = list(data.get("nftables", []))
    hooks = _hooks(items)
    rules = []
    for item in items:
        rule = item.get("rule")
        if not isinstance(rule, dict):
            continue
        exprs: list[Mapping[str, Any]] = list(rule.get("expr", []))
        target = _nat_target(exprs)
        if target is None:
            continue
        action, address, port, opaque = target
        dports, daddr = _nat_matches(exprs)
        key = (str(rule.get("family", "")), str(rule.get("table", "")), str(rule.get("chain", "")))
        rules.append(NatRule(
            family=key[0], table=key[1], chain=key[2], hook=hooks.get(key),
            handle=rule.get("handle"), action=action,
            to_address=address if isinstance(address, str) and not opaque else None,
            to_port=port if isinstance(port, int) and not opaque else None,
            dport_ranges=dports, daddr=daddr, opaque=opaque,
            text=" ".join(_describe(e) for e in exprs),
        ))  # fmt: skip
    return tuple(rules)

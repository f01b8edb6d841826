"""The egress record inside a sealed engine's own network namespace.

A sealed engine (role offgrid_seal) runs in a namespace of its own whose sink hands every
packet sent out to a counting reject rule that also logs to an NFLOG group. NFLOG, the
nftables ruleset and /proc/net/* are per network namespace: the rule, its counter and the
recorder listening on its group are only visible from inside. They are read by a
short-lived thread that joined the engine's namespace (`netns.in_namespace`, never the
audit's own threads): `nft -j list ruleset` runs as that thread's child (a child inherits
the thread's namespace) and the kernel's NFLOG and netlink tables are read through
/proc/thread-self/net (/proc/self/net would show the audit's main thread's namespace).
The recorder's log is a file like any other; its lines are those of the seal's rule prefix.

Judging what was read (is anything recorded, was it continuous) is for the checks.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from auditor.inventory import egress_log, netns, nft, recorder
from auditor.inventory.interface import (
    NamespaceFacts,
    NftRule,
    PreviousAudit,
    SealedRecording,
)

THREAD_NET = Path("/proc/thread-self/net")


@dataclasses.dataclass(frozen=True)
class Inside:
    """What was read inside the namespace: its rules and its NFLOG and netlink tables."""

    rules: tuple[NftRule, ...] | None
    nft_error: str | None
    nflog: str | None  # /proc/net/netfilter/nfnetlink_log there; None: unreadable
    netlink: str | None  # /proc/net/netlink there; None: unreadable


def read_inside() -> Inside:
    """Run in a thread that joined the namespace: everything read there."""
    rules, error = nft.read_ruleset(owner_scoped=False)
    nflog = recorder.read_text(THREAD_NET / "netfilter" / "nfnetlink_log")
    return Inside(rules, error, nflog, recorder.read_text(THREAD_NET / "netlink"))


def _prefix(rules: tuple[NftRule, ...]) -> str:
    """The log prefix of the namespace's logging rule (the seal's when it names none)."""
    return next((r.log_prefix for r in rules if r.log_group is not None and r.log_prefix),
                egress_log.SEAL_PREFIX)  # fmt: skip


def collect(
    space: NamespaceFacts, log: Path | None, previous: PreviousAudit | None
) -> SealedRecording:
    """The engine's namespace `space` (not the audit's): its rules, listeners and record."""
    base = SealedRecording(
        namespace=space.namespace, pid=space.pid, log=str(log) if log is not None else None,
        rules=None, nft_error=None, listening_groups=None,
    )  # fmt: skip
    if space.error is not None:
        return dataclasses.replace(base, error=space.error)
    try:
        inside = netns.in_namespace(space.pid, read_inside)
    except netns.NamespaceError as exc:
        return dataclasses.replace(base, error=str(exc.args[-1]))
    if netns.namespace_of(space.pid) != space.namespace:
        return dataclasses.replace(base, error=f"process {space.pid} changed namespace while read")
    groups = None if inside.nflog is None else tuple(recorder.ports_from(inside.nflog))
    found = dataclasses.replace(
        base, rules=inside.rules, nft_error=inside.nft_error, listening_groups=groups
    )
    if log is None or inside.rules is None:
        return found
    scope = recorder.Scope(space.namespace, True, _prefix(inside.rules), groups)
    sources, recording = recorder.sources(
        inside.rules, log, previous,
        lambda group: recorder.logger_in(group, inside.nflog, inside.netlink), scope,
    )  # fmt: skip
    return dataclasses.replace(found, recording=recording, sources=sources)

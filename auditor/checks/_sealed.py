"""What the egress record inside a sealed engine's own namespace lacks (OG-NET-05, OG-NET-07).

A sealed engine's attempts out meet the seal's counting reject rule inside its namespace;
only a recorder listening on that rule's NFLOG group there records them one by one. Each
function here is pure: it reads the collected `SealedRecording`.
"""

from __future__ import annotations

from auditor.inventory.interface import NftRule, SealedRecording
from auditor.verdicts import Status

LABEL = "engine namespace: "


def where(sealed: SealedRecording) -> str:
    return f"the engine's network namespace {sealed.namespace}"


def counting_rules(sealed: SealedRecording) -> tuple[NftRule, ...]:
    return tuple(
        r for r in sealed.rules or () if r.verdict in ("drop", "reject") and r.packets is not None
    )


def log_groups(sealed: SealedRecording) -> tuple[int, ...]:
    return tuple(sorted({r.log_group for r in sealed.rules or () if r.log_group is not None}))


def counted(sealed: SealedRecording) -> str:
    """What the namespace's counting rules say, for a summary."""
    rules = counting_rules(sealed)
    if not rules:
        return "no counting reject rule there either"
    packets = sum(r.packets or 0 for r in rules)
    return f"its reject rule counted {packets} packet(s) since it was loaded"


def evidence(sealed: SealedRecording) -> list[tuple[str, str]]:
    found = [(LABEL + "namespace", f"{sealed.namespace} entered through pid {sealed.pid}")]
    if sealed.error is not None:
        return [*found, (LABEL + "error", sealed.error)]
    found += [
        (LABEL + f"nft {r.family} {r.table} {r.chain} handle {r.handle}",
         f"{r.text} (table handle {r.table_handle}; counter {r.packets} packets, {r.bytes} bytes)")
        for r in counting_rules(sealed)
    ]  # fmt: skip
    listening = sealed.listening_groups
    found += [
        (LABEL + "NFLOG groups of its rules", ", ".join(map(str, log_groups(sealed))) or "none"),
        (LABEL + "NFLOG groups with a listener there",
         "unreadable" if listening is None else ", ".join(map(str, listening)) or "none"),
    ]  # fmt: skip
    recording = sealed.recording
    if recording is None:
        found.append((LABEL + "recorder log", sealed.log or "none configured (--seal-log)"))
    else:
        found.append(
            (LABEL + "recorder log",
             f"{recording.path} ({recording.size} bytes, inode {recording.inode})")
        )  # fmt: skip
    return found


def _unreadable(sealed: SealedRecording) -> str | None:
    if sealed.error is not None:
        return f"{where(sealed)} could not be read for its egress record: {sealed.error}"
    if sealed.rules is None:
        return f"the nftables ruleset inside {where(sealed)} could not be read: {sealed.nft_error}"
    return None


def _unrecorded(sealed: SealedRecording) -> str | None:
    """Why nothing there records attempts one by one; None: a recorder listens."""
    if sealed.log is None:
        return (
            f"the engine runs in its own network namespace {sealed.namespace}, but no recorder "
            f"log is configured for its namespace (--seal-log): attempts there are only counted "
            f"({counted(sealed)})"
        )
    groups = log_groups(sealed)
    if not groups:
        return (
            f"no rule in {where(sealed)} hands packets to an NFLOG group: attempts there are "
            f"only counted ({counted(sealed)})"
        )
    listening = sealed.listening_groups
    if listening is not None and not set(groups) & set(listening):
        return (
            f"no recorder in {where(sealed)}: nothing listens on NFLOG group(s) "
            f"{list(groups)} there, so attempts are only counted ({counted(sealed)})"
        )
    return None


def recording_problem(sealed: SealedRecording) -> tuple[Status, str] | None:
    """Why OG-NET-05 cannot judge the namespace's recorded attempts; None: it can."""
    unreadable = _unreadable(sealed)
    if unreadable is not None:
        return Status.ERROR, unreadable
    unrecorded = _unrecorded(sealed)
    if unrecorded is not None:
        return Status.FAIL, unrecorded
    if sealed.listening_groups is None:
        return Status.ERROR, f"the NFLOG listener table of {where(sealed)} is unreadable"
    return _log_problem(sealed)


def _log_problem(sealed: SealedRecording) -> tuple[Status, str] | None:
    recording = sealed.recording
    if recording is None:
        return Status.ERROR, f"the recorder's log of {where(sealed)} was not read"
    if not recording.exists:
        return Status.FAIL, f"the recorder's log {recording.path} of {where(sealed)} does not exist"
    if recording.error is not None:
        return Status.ERROR, f"the recorder's log {recording.path}: {recording.error}"
    return None


def continuity_problem(sealed: SealedRecording) -> tuple[Status, str] | None:
    """Why OG-NET-07 cannot follow the namespace's recording; None: its sources can be."""
    unreadable = _unreadable(sealed)
    if unreadable is not None:
        return Status.ERROR, unreadable
    if sealed.log is None:
        return (
            Status.FAIL,
            f"the engine runs in its own network namespace {sealed.namespace}, where nothing "
            "is recorded (no --seal-log): continuity covers the host's namespace only",
        )
    if not log_groups(sealed):
        return Status.FAIL, f"no rule in {where(sealed)} hands packets to an NFLOG group"
    return None

"""Plain-text summaries of verification results (pure: they return strings)."""

from __future__ import annotations

from collections.abc import Iterable

from auditor.models.digests import DigestStats
from auditor.models.pins import EngineCheck
from auditor.models.verify import BundleReport, ItemStatus, Problem, StoreReport


def _item_lines(items: Iterable[ItemStatus]) -> list[str]:
    lines = []
    for item in items:
        lines.append(f"{item.status.upper():10} {item.kind} {item.name}")
        lines += [f"           {problem}" for problem in item.problems]
    return lines


def _unpinned_lines(problems: Iterable[Problem]) -> list[str]:
    return [f"UNPINNED   {problem}" for problem in problems]


def store_lines(report: StoreReport) -> list[str]:
    return [
        f"store {report.root} ({report.layout} layout)",
        *_item_lines(report.items),
        *_unpinned_lines(report.unpinned),
    ]


def engine_lines(check: EngineCheck | None, note: str) -> list[str]:
    if check is None:
        return [f"engine: {note}"] if note else []
    lines = [f"{check.status.upper():10} engine {check.name} {check.version or ''}".rstrip()]
    if check.error:
        lines.append(f"           {check.error}")
    for f in check.files:
        state = "ok" if f.ok else (f.error or f"sha256 {f.sha256}, pinned {f.pinned_sha256}")
        lines.append(f"           {f.path}: {state}")
    return lines


def stats_line(stats: DigestStats) -> str:
    return (
        f"mode {stats.mode} ({stats.mode_reason}); {stats.blobs_hashed} blob(s) hashed "
        f"({stats.bytes_hashed / 1e6:.1f} MB), {stats.blobs_from_cache} from the verified "
        f"cache, {stats.duration_s:.2f} s"
    )


def bundle_text(report: BundleReport, stats: DigestStats) -> str:
    lines = [f"bundle {report.root}", *_item_lines(report.items)]
    for store in report.stores:
        lines += store_lines(store)
    lines += [f"EXTRA      {problem}" for problem in report.unpinned]
    lines.append(stats_line(stats))
    lines.append("bundle matches its lock" if report.ok else "bundle does NOT match its lock")
    return "\n".join(lines)

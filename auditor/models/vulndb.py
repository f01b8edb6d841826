"""The known-vulnerability table: OSV JSON entries, from the wheel or from the bundle.

OSV (https://ossf.github.io/osv-schema/) is the exchange format vulnerability databases
publish offline (osv.dev exports one JSON file per entry). The engines' packages:
- Ollama: ecosystem Go, `github.com/ollama/ollama`, SEMVER ranges;
- llama-cpp-python: ecosystem PyPI, `llama-cpp-python`;
- llama.cpp's server: ecosystem GIT, `https://github.com/ggml-org/llama.cpp`, ranges over
  its release tags (`bNNNN`).
An entry of another package is kept in the bundle but matches no engine.

An entry whose fixed version the vendor (or the CVE record) does not confirm says so in the
OSV-compatible `database_specific.offgrid` object: `fixed_version_confirmed: false`, a
`note` on what is and is not known, and the `sources` where the range was read; an
entry with only a `last_affected` bound has no confirmed fix either.

The wheel ships a table (auditor/data/osv/, its date in table.toml). A bundle may carry a
newer one (`offgrid bundle add-vulns`), pinned in the lock with its date and source. The
table in use is the newer of the two; an entry of the older one that the newer one does not
list stays in use (a newer table never silently drops a vulnerability).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from auditor import safeio
from auditor.errors import InputError

# (ecosystem, package name) -> the product name an engine profile reports
PACKAGES: dict[tuple[str, str], str] = {
    ("Go", "github.com/ollama/ollama"): "ollama",
    ("PyPI", "llama-cpp-python"): "llama-cpp-python",
    ("GIT", "https://github.com/ggml-org/llama.cpp"): "llama.cpp",
}
BUNDLE_VULNS_DIR = "vulns"
MAX_ENTRY_BYTES = 1 << 20  # one OSV entry; osv.dev's largest are a few hundred KiB
MAX_ENTRIES = 20_000

Version = tuple[int, ...]


def parse_version(text: str) -> Version:
    """ "0.1.34", "v0.12.0-rc1" (→ 0.12.0), "b4882" (a llama.cpp build) → comparable tuple."""
    match = re.match(r"^[vb]?(\d+(?:\.\d+)*)", text.strip())
    if match is None:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(part) for part in match.group(1).split("."))


def _cmp(left: str, right: str) -> int:
    a, b = parse_version(left), parse_version(right)
    width = max(len(a), len(b))
    a, b = a + (0,) * (width - len(a)), b + (0,) * (width - len(b))
    return (a > b) - (a < b)


@dataclass(frozen=True)
class Event:
    kind: str  # "introduced" | "fixed" | "last_affected"
    version: str


Ranges = tuple[tuple[Event, ...], ...]


@dataclass(frozen=True)
class KnownVulnerability:
    id: str
    aliases: tuple[str, ...]
    product: str  # "ollama" | "llama-cpp-python" | "llama.cpp" | "" (no engine's package)
    ranges: Ranges
    summary: str
    source: str  # the first reference: where the range was checked
    verified: bool  # False: the fixed version is not confirmed by the vendor or the CVE record
    note: str
    modified: str
    withdrawn: bool = False
    sources: tuple[str, ...] = ()  # where the range and the fix were read
    # True when the entry carries offgrid's own review (database_specific.offgrid); an
    # entry exported as-is from a database (osv.dev) states its fix unreviewed
    reviewed: bool = False

    @property
    def fixed(self) -> str:
        return next((e.version for r in self.ranges for e in r if e.kind == "fixed"), "")

    @property
    def fix_unconfirmed(self) -> bool:
        """No fixed version the vendor confirms: none is named (only a last affected one),
        or the one named is marked unconfirmed. A version past the range is then not shown
        to be fixed, only not listed as affected."""
        return not self.verified or not self.fixed

    def past_range(self, version: str) -> bool:
        """The version is above every fixed / last_affected bound of the entry."""
        bounds = [e.version for r in self.ranges for e in r if e.kind != "introduced"]
        return bool(bounds) and all(_cmp(version, bound) >= 0 for bound in bounds)

    @property
    def affected(self) -> str:
        """The ranges as text: ">=b4882,<=b9058", "<0.1.29"; ranges joined by " or "."""
        ops = {"introduced": ">=", "fixed": "<", "last_affected": "<="}
        parts = [
            ",".join(f"{ops[e.kind]}{e.version}" for e in r if e.version != "0") or "all"
            for r in self.ranges
        ]
        return " or ".join(parts)

    def affects(self, version: str) -> bool:
        """OSV range semantics: affected from an `introduced` up to a `fixed` (exclusive) or
        a `last_affected` (inclusive); raises ValueError for a version it cannot compare."""
        return any(_in_range(version, events) for events in self.ranges)


def _event_key(event: Event) -> Version:
    return () if event.version == "0" else parse_version(event.version)


def _in_range(version: str, events: tuple[Event, ...]) -> bool:
    affected = False
    for event in sorted(events, key=_event_key):
        if event.kind == "introduced":
            affected = affected or event.version == "0" or _cmp(version, event.version) >= 0
            continue
        past = _cmp(version, event.version)
        if past > 0 or (past == 0 and event.kind == "fixed"):
            affected = False
    return affected


@dataclass(frozen=True)
class VulnTable:
    date: str  # YYYY-MM-DD: the day its entries were last checked against their sources
    source: str  # where the table came from
    origin: str  # "wheel" | "bundle"
    entries: tuple[KnownVulnerability, ...]

    def for_product(self, product: str) -> tuple[KnownVulnerability, ...]:
        return tuple(v for v in self.entries if v.product == product and not v.withdrawn)


def _str(raw: dict[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(f"{where}: OSV entry needs a non-empty string {key!r}")
    return value


def _events(raw: object, where: str) -> tuple[Event, ...]:
    if not isinstance(raw, dict) or not isinstance(raw.get("events"), list):
        raise InputError(f"{where}: a range needs an 'events' list")
    events = []
    for item in raw["events"]:
        if not isinstance(item, dict) or len(item) != 1:
            raise InputError(f"{where}: each event has exactly one of introduced/fixed/...")
        ((kind, version),) = item.items()
        if kind == "limit":
            continue
        if kind not in ("introduced", "fixed", "last_affected") or not isinstance(version, str):
            raise InputError(f"{where}: unknown event {item!r}")
        if version != "0":
            try:
                parse_version(version)
            except ValueError:
                raise InputError(f"{where}: cannot compare version {version!r}") from None
        events.append(Event(kind, version))
    return tuple(events)


def _product_and_ranges(
    raw: dict[str, Any], where: str
) -> tuple[str, tuple[tuple[Event, ...], ...]]:
    affected = raw.get("affected", [])
    if not isinstance(affected, list):
        raise InputError(f"{where}: 'affected' must be a list")
    for item in affected:
        package = item.get("package", {}) if isinstance(item, dict) else {}
        key = (package.get("ecosystem"), package.get("name")) if isinstance(package, dict) else None
        product = PACKAGES.get(key) if key else None  # type: ignore[arg-type]
        if product is not None:
            ranges = item.get("ranges", [])
            if not isinstance(ranges, list):
                raise InputError(f"{where}: 'ranges' must be a list")
            return product, tuple(_events(r, where) for r in ranges)
    return "", ()


def parse_entry(raw: object, where: str) -> KnownVulnerability:
    """One OSV entry; InputError names what is wrong with it."""
    if not isinstance(raw, dict):
        raise InputError(f"{where}: an OSV entry is a JSON object")
    product, ranges = _product_and_ranges(raw, where)
    refs = raw.get("references") or []
    urls = [str(r["url"]) for r in refs if isinstance(r, dict) and isinstance(r.get("url"), str)]
    own = (raw.get("database_specific") or {}).get("offgrid") or {}
    reviewed = isinstance(own, dict) and bool({"fixed_version_confirmed", "verified"} & own.keys())
    own = own if isinstance(own, dict) else {}
    aliases = raw.get("aliases") or []
    sources = own.get("sources")
    checked = tuple(str(u) for u in sources) if isinstance(sources, list) else tuple(urls[:1])
    return KnownVulnerability(
        id=_str(raw, "id", where),
        aliases=tuple(a for a in aliases if isinstance(a, str)),
        product=product,
        ranges=ranges,
        summary=str(raw.get("summary") or raw.get("details") or "")[:500],
        source=urls[0] if urls else "",
        verified=bool(own.get("fixed_version_confirmed", own.get("verified", True))),
        note=str(own.get("note", "")),
        modified=_str(raw, "modified", where),
        withdrawn=bool(raw.get("withdrawn")),
        sources=checked,
        reviewed=reviewed,
    )


def read_entry(path: Path) -> bytes:
    """An entry file's bytes (a regular file, no larger than any OSV entry)."""
    return safeio.read_bytes(path, MAX_ENTRY_BYTES, what="OSV entry")


def decode_entry(data: bytes, where: str) -> KnownVulnerability:
    return parse_entry(safeio.parse_json(data, where), where)


def entry_files(path: Path) -> tuple[Path, ...]:
    """A FILE or every *.json directly in a DIR (osv.dev's unpacked export)."""
    if path.is_file():
        return (path,)
    if path.is_dir():
        files = tuple(sorted(p for p in path.glob("*.json") if p.is_file() and not p.is_symlink()))
        if not files:
            raise InputError(f"{path}: no *.json OSV entries in this directory")
        if len(files) > MAX_ENTRIES:
            raise InputError(f"{path}: more than {MAX_ENTRIES} entries")
        return files
    raise InputError(f"{path}: no such file or directory")


def load_entries(files: tuple[Path, ...]) -> tuple[tuple[bytes, KnownVulnerability], ...]:
    """Each file's bytes and its entry; InputError on the first invalid one or a repeated id."""
    loaded = []
    for path in files:
        data = read_entry(path)
        loaded.append((data, decode_entry(data, str(path))))
    ids = [entry.id for _, entry in loaded]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate is not None:
        raise InputError(f"OSV entry {duplicate} is given twice")
    return tuple(loaded)


def check_date(text: str, what: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise InputError(f"{what}: {text!r} is not a date (YYYY-MM-DD)") from None


def wheel_table() -> VulnTable:
    """The table the wheel ships."""
    root = resources.files("auditor.data").joinpath("osv")
    meta = tomllib.loads(root.joinpath("table.toml").read_text("utf-8"))
    entries = tuple(
        decode_entry(f.read_bytes(), f"auditor/data/osv/{f.name}")
        for f in sorted(root.iterdir(), key=lambda f: f.name)
        if f.name.endswith(".json")
    )
    return VulnTable(check_date(meta["date"], "table.toml"), meta["source"], "wheel", entries)


def merged(newer: VulnTable, older: VulnTable) -> VulnTable:
    """The newer table, plus entries of the older one it does not list under any name."""
    names = {n for e in newer.entries for n in (e.id, *e.aliases)}
    kept = tuple(e for e in older.entries if not {e.id, *e.aliases} & names)
    return VulnTable(newer.date, newer.source, newer.origin, (*newer.entries, *kept))

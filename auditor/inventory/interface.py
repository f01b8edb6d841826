"""The facts every check reads. Collectors fill them; checks never gather their own.

Fields that could not be read are None and the reason is listed in `incomplete`,
so a check can answer `error` instead of a false `pass`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from auditor.engine_kind import EngineKind
from auditor.models.integrity import IntegrityRun


@dataclass(frozen=True)
class AuditOptions:
    """What the user asked for; collectors and checks read it, never argv."""

    engine: EngineKind | None = None  # None: discover it
    engine_pid: int | None = None
    watch_seconds: float = 0.0
    lock_path: Path | None = None  # offgrid lock file: enables the OG-INT controls
    store_dir: Path | None = None  # model store to verify; default from the engine's env
    full_hash: bool = False  # re-hash every blob instead of trusting the verified cache
    # where the verified-hash cache and its HMAC key live; None = /var/lib/offgrid
    hash_cache_dir: Path | None = None
    ide_users: tuple[str, ...] = ()  # users whose IDE settings OG-TEL inspects
    max_exposure: float = 2.5  # OG-HRD-01 threshold on systemd-analyze security
    # OG-NET-04 active probe target "HOST:PORT"; no default: without it enforcement is unverified
    egress_probe: str | None = None


@dataclass(frozen=True)
class Privilege:
    euid: int
    is_root: bool
    note: str  # what running without root hides, said in the report


@dataclass(frozen=True)
class ProcessFact:
    pid: int
    create_time: float  # pid + create_time is a process's identity (pids are reused)
    ppid: int
    name: str
    exe: str | None
    cmdline: tuple[str, ...]
    username: str | None
    uid: int | None


@dataclass(frozen=True)
class SocketFact:
    protocol: str  # "tcp" | "udp"
    family: str  # "ipv4" | "ipv6"
    local_address: str
    local_port: int
    remote_address: str | None
    remote_port: int | None
    state: str  # "LISTEN", "ESTABLISHED", "SYN_SENT", … ("NONE" for unconnected UDP)
    pid: int | None  # None: the owner could not be read (not root)
    inode: int | None = None


@dataclass(frozen=True)
class UnitFacts:
    """A systemd unit as configured: the unit file, every drop-in, the merged environment."""

    name: str
    fragment_path: str | None
    dropin_paths: tuple[str, ...]
    environment: Mapping[str, str]  # Environment= and EnvironmentFile=, merged in order
    properties: Mapping[str, str]  # User, Group, IPAddressDeny, ExecStart, … as systemd reports
    source: str  # "systemctl" (from a running systemd) or "files" (parsed from disk)
    # drop-ins found on disk, whether or not systemd has loaded them (daemon-reload)
    dropins_on_disk: tuple[str, ...] = ()
    # per drop-in on disk: the [Service] settings it assigns, "Environment:NAME" for variables
    dropin_settings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class EngineFacts:
    kind: EngineKind
    discovered_by: str  # "unit", "process", "port", "pid"
    main: ProcessFact | None
    tree: tuple[ProcessFact, ...]  # main process and every descendant (runners)
    exe_path: str | None
    version: str | None
    environ: Mapping[str, str] | None  # /proc/PID/environ; None if unreadable
    unit: UnitFacts | None
    port: int | None
    listen_host: str | None  # the bind address the configuration asks for
    # other processes that also looked like this engine (only the first is audited)
    other_candidates: tuple[int, ...] = ()
    # the engine runs in another network namespace: its sockets are not in Facts.sockets
    foreign_netns: bool = False
    # Ollama's ~/.ollama/server.json of the service user ({"disable_ollama_cloud": true})
    server_config_path: str | None = None
    server_config: Mapping[str, object] | None = None  # None: missing or unreadable
    server_config_error: str | None = None


@dataclass(frozen=True)
class NftRule:
    """An nftables rule that scopes egress to the engine's service user."""

    family: str
    table: str
    chain: str
    handle: int | None
    comment: str | None
    skuid: str | None  # the `meta skuid` value the rule matches
    verdict: str | None  # "drop" | "reject" | "accept" | None
    packets: int | None  # the rule's counter; None when the rule has no counter
    bytes: int | None
    text: str  # a readable rendering of the rule for the evidence


@dataclass(frozen=True)
class ProbeResult:
    """An active egress probe: a connection attempted as the engine's user in its cgroup."""

    target: str  # "HOST:PORT"
    outcome: str  # "connected" | "blocked" | "error"
    detail: str  # errno name, timeout or why the probe could not run
    control_reachable: bool | None  # the same target from outside the unit (validates it)
    cgroup: str | None  # the cgroup the probe joined
    uid: int | None
    gid: int | None


@dataclass(frozen=True)
class EgressFacts:
    nft_rules: tuple[NftRule, ...] | None  # None: the ruleset could not be read (see nft_error)
    nft_error: str | None
    probe: ProbeResult | None  # None: no probe address configured


@dataclass(frozen=True)
class FileModeFact:
    path: str
    role: str  # "engine binary", "unit file", "model store", …
    exists: bool
    mode: int | None  # st_mode & 0o7777
    uid: int | None
    gid: int | None
    is_dir: bool = False


@dataclass(frozen=True)
class ServiceUserFact:
    name: str | None
    uid: int | None
    gid: int | None
    shell: str | None  # from the passwd database; None when the user has no entry
    source: str  # "unit User=" | "process"


@dataclass(frozen=True)
class SecurityScore:
    """`systemd-analyze security UNIT`: the overall exposure, or why it is missing."""

    exposure: float | None
    rating: str | None
    error: str | None
    output_tail: str = ""


@dataclass(frozen=True)
class HardeningFacts:
    security: SecurityScore
    service_user: ServiceUserFact | None
    files: tuple[FileModeFact, ...]


@dataclass(frozen=True)
class IdeSettingsFile:
    """One IDE settings file of one configured user."""

    user: str
    kind: str  # "vscode" | "continue"
    product: str  # "Code", "VSCodium", "Continue", …
    path: str
    exists: bool
    settings: Mapping[str, object] | None  # parsed content; None when missing or unreadable
    error: str | None  # unreadable or malformed


@dataclass(frozen=True)
class IdeFacts:
    files: tuple[IdeSettingsFile, ...]
    unknown_users: tuple[str, ...]


@dataclass(frozen=True)
class Facts:
    hostname: str
    collected_at: str  # ISO 8601, UTC
    privilege: Privilege
    options: AuditOptions
    processes: tuple[ProcessFact, ...]
    sockets: tuple[SocketFact, ...]
    # sockets seen by --watch samples after the first snapshot (short-lived connections)
    watched_sockets: tuple[SocketFact, ...] = ()
    engine: EngineFacts | None = None
    systemd_running: bool = False
    incomplete: tuple[str, ...] = field(default_factory=tuple)
    extra: Mapping[str, object] = field(default_factory=dict)
    egress: EgressFacts | None = None
    hardening: HardeningFacts | None = None
    ide: IdeFacts | None = None
    # the engine and models verified against --lock; None: no lock file configured
    integrity: IntegrityRun | None = None

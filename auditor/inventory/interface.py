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
from auditor.models.vulnbundle import VulnSelection


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
    # OG-VUL-02: the oldest acceptable known-vulnerability table, in days
    max_vuln_age_days: int = 90
    cli_users: tuple[str, ...] = ()  # users of the engine's CLI whose environment OG-AGT reads
    # JSON lines the kernel-side recorder (ulogd2 on the reject rule's NFLOG group) writes;
    # None: not configured, OG-NET-05 says so
    egress_log: Path | None = None
    # ssh allowed_signers the lock's signature is checked against; None: the report says the
    # signer is unverifiable
    allowed_signers: Path | None = None
    # the report history: the previous report of this host there is the egress baseline
    history: Path | None = None
    # the gateway's description written by role offgrid_gateway: enables the OG-GW controls
    gateway: Path | None = None
    # OG-NET-06: an engine sharing the host's network namespace fails instead of being
    # not applicable (for workstations provisioned with the sealed engine)
    require_sealed: bool = False
    # JSON lines of the recorder that listens inside a sealed engine's own network namespace
    # (role offgrid_seal's); None: not configured, OG-NET-05/07 say so for a sealed engine
    seal_log: Path | None = None


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
class RunnerFact:
    """A process that looks like an engine's inference runner, as its command line says."""

    pid: int
    kind: str  # "llama-server" (Ollama >= 0.30) | "ollama runner" (older Ollama)
    host: str | None  # --host; None: not given (the legacy runner binds 127.0.0.1 itself)
    port: int | None  # --port; None: not given or not a number
    offline: bool | None  # --offline given; None: this kind of runner has no such flag
    model: str | None = None  # --model
    ctx: int | None = None  # -c: context for all slots together
    slots: int | None = None  # -np
    gpu_layers: int | None = None  # -ngl


@dataclass(frozen=True)
class SocketFact:
    protocol: str  # "tcp" | "udp"
    family: str  # "ipv4" | "ipv6"
    local_address: str
    local_port: int
    remote_address: str | None
    remote_port: int | None
    state: str  # "LISTEN", "ESTABLISHED", "SYN_SENT", … ("NONE" for unconnected UDP)
    # None: no owner resolved (not root: unreadable; root: not a socket any control needs)
    pid: int | None
    inode: int | None = None
    uid: int | None = None  # the socket's owning uid, as the kernel records it


@dataclass(frozen=True)
class InterfaceFact:
    """One network interface of a namespace, as rtnetlink and /proc/PID/net/dev show it."""

    index: int
    name: str
    kind: str | None  # rtnetlink's link kind: "veth", "dummy", "bridge", "tun", …; None: a device
    link_type: int  # ARPHRD_* (772 loopback, 1 ethernet, 65534 none)
    up: bool  # IFF_UP
    loopback: bool  # IFF_LOOPBACK
    operstate: str  # "UP", "DOWN", "UNKNOWN", …
    addresses: tuple[str, ...]  # "10.88.0.2/16", "fe80::1/64"
    peer_index: int | None = None  # IFLA_LINK: a veth's peer, a macvlan's parent
    # IFLA_LINK_NETNSID: the peer lives in another namespace (None: in this one, or no peer)
    peer_netnsid: int | None = None
    master: int | None = None  # IFLA_MASTER: the bridge or bond it is enslaved to
    rx_packets: int | None = None  # /proc/PID/net/dev; None: not listed there
    tx_packets: int | None = None


@dataclass(frozen=True)
class RouteFact:
    """One route of any table of a namespace (rtnetlink RTM_GETROUTE dump)."""

    family: str  # "ipv4" | "ipv6"
    destination: str  # "default" or "10.88.0.0/16"
    table: int  # 254 main, 255 local, …
    type: str  # "unicast", "local", "broadcast", "multicast", "blackhole", "unreachable", …
    devices: tuple[str, ...]  # the output interface(s) by name (several for multipath)
    gateway: str | None = None
    nexthop_id: int | None = None  # RTA_NH_ID: the route goes through a nexthop object


@dataclass(frozen=True)
class NamespaceFacts:
    """One network namespace, read from inside it (entered through a member process)."""

    namespace: str  # "net:[4026532291]", the /proc/PID/ns/net link
    pid: int  # the process whose namespace was entered
    role: str  # why it was read: "engine", "audit" (the audit's own), …
    shares_audit_namespace: bool  # the namespace the audit itself runs in
    sockets: tuple[SocketFact, ...] | None  # owners resolved among the pids asked; None: error
    interfaces: tuple[InterfaceFact, ...] | None  # None: not asked, or error
    routes: tuple[RouteFact, ...] | None
    error: str | None  # why it could not be read (no CAP_SYS_ADMIN, process gone, …)
    # the member process's cgroup (docker-ID.scope, libpod-ID.scope, machine-NAME.scope,
    # UNIT.service): which container or unit holds the namespace
    cgroup: str | None = None


@dataclass(frozen=True)
class NatRule:
    """An nftables destination-NAT rule (`dnat`, `redirect`, iptables-nft's DNAT target)."""

    family: str
    table: str
    chain: str
    hook: str | None  # the chain's hook ("prerouting", "output"); None: a chain jumped to
    handle: int | None
    action: str  # "dnat" | "redirect" | "xt DNAT"
    to_address: str | None  # None: redirect (this host), or not readable (see opaque)
    to_port: int | None  # None: the packet's own destination port
    dport_ranges: tuple[tuple[int, int], ...] | None  # matched destination ports; None: any
    daddr: str | None  # matched destination address (`ip daddr`); None: any
    opaque: bool  # the destination is a map or an iptables extension nft cannot show
    text: str


@dataclass(frozen=True)
class ExposureFacts:
    """What the audit's (host) namespace does toward an engine in another namespace."""

    owner_namespaces: Mapping[int, str]  # pid of a host-side socket owner -> its namespace
    nat_rules: tuple[NatRule, ...] | None  # None: the ruleset could not be read
    nat_error: str | None


@dataclass(frozen=True)
class NginxServer:
    """One server block of nginx's configuration: where it listens, where it passes to."""

    context: str  # "http" | "stream"
    listens: tuple[str, ...]  # listen arguments as written ("127.0.0.1:8080", "*:80", …)
    targets: tuple[str, ...]  # every proxy_pass target: "unix:PATH", "HOST:PORT", an upstream
    other_passes: tuple[str, ...] = ()  # fastcgi_pass, grpc_pass, … found in it


@dataclass(frozen=True)
class NginxMaster:
    """An nginx master holding a host-side listener, and the configuration it was given."""

    pid: int
    config: str  # its -c file
    servers: tuple[NginxServer, ...]
    error: str | None = None  # unreadable or unparsable: its servers are unknown


@dataclass(frozen=True)
class SocketUnitListen:
    """One listener of a systemd socket unit (`systemctl list-sockets`)."""

    listen: str  # a path or ADDRESS:PORT
    kind: str  # "Stream", "Datagram", …
    unit: str
    activates: tuple[str, ...]


@dataclass(frozen=True)
class UnixListener:
    """A listening unix socket bound to a path (/proc/net/unix) and its owner."""

    path: str
    inode: int
    owner: int | None


@dataclass(frozen=True)
class ServiceMain:
    """A service's main process (systemd's MainPID) and its network namespace."""

    unit: str
    pid: int | None
    namespace: str | None


@dataclass(frozen=True)
class GatewayChainFacts:
    """What ties a host-side listener on the sealed engine's port to the engine: nginx's
    configuration, the socket units holding its upstream sockets, the services they start."""

    masters: tuple[NginxMaster, ...]
    socket_units: tuple[SocketUnitListen, ...] | None  # None: systemd could not be asked
    unix_listeners: tuple[UnixListener, ...] | None  # None: /proc/net/unix unreadable
    services: tuple[ServiceMain, ...]
    error: str | None = None


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
    log_group: int | None = None  # `log group N`: the rule hands packets to NFLOG group N
    # the table's handle: a new one each time the table is created (a reload, a reboot)
    table_handle: int | None = None
    # sha256 of the table's owner-scoped rules with their counters left out
    table_digest: str | None = None
    log_prefix: str | None = None  # the `log prefix` the recorder writes with each packet


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
    source_port: int | None = None  # the probe's own port: its recorded attempt is recognisable
    # when the probe ran (ISO 8601 UTC): its recorded attempt falls in this window
    started_at: str | None = None
    finished_at: str | None = None
    # the engine's network namespace the probe connected from; None: the audit's own
    namespace: str | None = None


@dataclass(frozen=True)
class EgressAttempt:
    """One packet the egress rule rejected, as the kernel handed it to the recorder."""

    time: str  # ISO 8601 UTC, from the kernel's timestamp of the packet
    protocol: str  # "tcp" | "udp" | "icmp" | "ipv6-icmp" | the IP protocol number
    family: str  # "ipv4" | "ipv6"
    source: str
    source_port: int | None
    destination: str
    destination_port: int | None
    uid: int | None  # the sending socket's owner (NFLOG cannot tell the process)
    prefix: str
    packets: int = 1  # packets of this attempt (a TCP SYN and its retransmissions)
    last_time: str | None = None  # the last packet's time, when there were several


@dataclass(frozen=True)
class EgressRecording:
    """What the recorder's log held when the audit read it."""

    path: str
    exists: bool
    attempts: tuple[EgressAttempt, ...]
    size: int | None = None
    inode: int | None = None
    unparsable_lines: int = 0
    error: str | None = None  # unreadable, or too large to read whole
    # the loaded rules' `log group N` (for any socket owner; the check picks the user's)
    nflog_groups: tuple[int, ...] = ()
    # NFLOG groups a listener (the recorder) is bound to here; None: the table is unreadable
    listening_groups: tuple[int, ...] | None = None
    # what `attempts` covers: "the whole log" or where the previous audit stopped reading
    read_from: str = "the whole log"


@dataclass(frozen=True)
class RuleIdentity:
    """The counting rule of a recorded source, as nftables names it."""

    family: str
    table: str
    chain: str
    table_handle: int | None  # new whenever the table is (re)created
    rule_handle: int | None
    digest: str | None  # the table's owner-scoped rules without counters


@dataclass(frozen=True)
class LoggerIdentity:
    """The process listening on the source's NFLOG group."""

    pid: int
    name: str
    started_at: str  # ISO 8601 UTC, the process's start time


@dataclass(frozen=True)
class LogPosition:
    """How far an audit read the recorder's log: the next audit continues from here."""

    path: str
    inode: int
    offset: int  # end of the last complete line read
    tail_sha256: str  # sha256 of the bytes just before `offset` (up to TAIL_BYTES)


@dataclass(frozen=True)
class RecorderState:
    """Where one recorded source of egress attempts stood when an audit read it.

    A source is a counting reject rule that hands packets to an NFLOG group, the process
    listening on that group, and the log it writes. The report carries this state; the
    next audit compares itself with it.
    """

    source: str  # stable name: "<family> <table> <chain> group <N> -> <log path>"
    read_at: str  # ISO 8601 UTC
    boot_id: str | None
    skuid: str | None  # the socket owner the source records
    rule: RuleIdentity | None  # None: no such rule is loaded now
    packets: int | None  # the counting rule's counter
    bytes: int | None
    logger: LoggerIdentity | None  # None: nothing listens on the group
    log: LogPosition | None  # None: the log is missing or unreadable
    recorded_packets: int = 0  # packets the log holds in what this audit read
    # the network namespace ("net:[INODE]") the rule and the listener were read in; None: a
    # baseline written before namespaces were recorded (always the audit's own)
    namespace: str | None = None
    sealed: bool = False  # read inside the engine's own namespace, not the audit's (host) one


@dataclass(frozen=True)
class PreviousAudit:
    """The baseline the previous vouched-for report of this host left in the history."""

    history: str  # the history directory
    entry: int | None  # its entry; None: no earlier report of this host (the first night)
    finished_at: str | None
    states: tuple[RecorderState, ...] = ()
    error: str | None = None  # the history or the report cannot be trusted or read


@dataclass(frozen=True)
class RecordedSource:
    """A recorded source now, beside its state at the previous audit."""

    now: RecorderState
    before: RecorderState | None  # None: no baseline for this source
    log_break: str | None = None  # why the log could not be continued from the baseline


@dataclass(frozen=True)
class SealedRecording:
    """The egress record inside the engine's own network namespace (a sealed engine): the
    namespace's ruleset, the NFLOG listeners bound there, and the log of its recorder."""

    namespace: str  # "net:[INODE]"
    pid: int  # the engine process the namespace was entered through
    log: str | None  # the recorder log configured for it (--seal-log); None: none
    rules: tuple[NftRule, ...] | None  # every rule of the namespace; None: unreadable
    nft_error: str | None
    listening_groups: tuple[int, ...] | None  # NFLOG groups bound there; None: unreadable
    recording: EgressRecording | None = None  # None: no log configured, or not read
    sources: tuple[RecordedSource, ...] = ()
    error: str | None = None  # the namespace could not be entered or read


@dataclass(frozen=True)
class EgressFacts:
    nft_rules: tuple[NftRule, ...] | None  # None: the ruleset could not be read (see nft_error)
    nft_error: str | None
    probe: ProbeResult | None  # None: no probe address configured
    recording: EgressRecording | None = None  # None: no recorder log configured
    previous: PreviousAudit | None = None  # None: no report history given (--history)
    sources: tuple[RecordedSource, ...] = ()
    # the engine's own namespace, when it is not the audit's; None: it shares the audit's
    sealed: SealedRecording | None = None


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
    kind: str  # "vscode" | "continue" | "continue-shared" (Continue's globalContext.json)
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
class HttpProbe:
    """One request to the running engine and what it answered."""

    url: str
    method: str
    status: int | None  # None: no answer (see error)
    headers: Mapping[str, str]  # lower-case names
    body: object  # parsed JSON, or None
    error: str | None


@dataclass(frozen=True)
class JournalLine:
    """The last line of the unit's journal since its last start that matched a pattern."""

    unit: str
    invocation: str | None  # systemd's InvocationID of the current run
    line: str | None  # None: not found (or the journal is unreadable: see error)
    error: str | None


@dataclass(frozen=True)
class LiveFacts:
    """The running engine's own word: answers to probes and its start-up log."""

    cors_origin: str  # the foreign Origin the CORS probe sent
    cors: HttpProbe | None  # None: the engine is not running
    cloud_status: HttpProbe | None  # None: the engine has no status route, or is not running
    cloud_log: JournalLine | None  # None: no unit, or the engine logs no such line


@dataclass(frozen=True)
class GpuDevice:
    name: str
    driver_version: str
    memory_total_mib: int | None


@dataclass(frozen=True)
class GpuFacts:
    devices: tuple[GpuDevice, ...]
    cuda_version: str | None  # the CUDA version the driver supports; None: not stated
    source: str  # the nvidia-smi that answered
    error: str | None  # no driver, no device, or nvidia-smi failed


@dataclass(frozen=True)
class ServedModel:
    """A model the running engine has loaded, with the parameters it serves it with."""

    name: str  # as the engine names it (model:tag, or the llama.cpp model alias)
    source: str  # where the values below were read
    num_ctx: int | None  # context length in tokens per request; None: not stated
    num_gpu: int | None  # layers asked on the GPU; None: not stated (the engine decides)
    temperature: float | None  # default sampling temperature; None: not stated
    size: int | None = None  # bytes the loaded model takes (Ollama's /api/ps)
    size_vram: int | None = None  # of which on the GPU


@dataclass(frozen=True)
class ServedModels:
    models: tuple[ServedModel, ...]
    error: str | None  # the engine could not be asked (models is then empty)
    # the lock's Modelfile parameters per model name (short form); empty without a lock
    pinned: Mapping[str, Mapping[str, object]] = field(default_factory=dict)


@dataclass(frozen=True)
class CliUserEnv:
    """Where the agent-tool switches are set for one user of the engine's CLI."""

    user: str
    home: str | None  # None: the user does not exist
    # variable -> (value, where it was set), the last assignment in login order
    settings: Mapping[str, tuple[str, str]]
    files_read: tuple[str, ...]
    # running CLI processes of the user: pid -> the variables' values (None: unset)
    live: Mapping[int, Mapping[str, str | None]]
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class GatewayProbe:
    """One request to a listener on this host and what answered it."""

    listener: str  # "local", "team", or HOST:PORT of another listener that may reach the engine
    method: str
    path: str
    credential: str  # "none" | "audit" (the role's audit-only token) | "invalid"
    status: int | None  # None: no HTTP answer (see error)
    from_gateway: bool  # the answer carries the gateway's X-Offgrid-Gateway header
    error: str | None = None


@dataclass(frozen=True)
class TlsHandshake:
    version: str  # "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"
    outcome: str  # "accepted" | "refused" | "untestable" (this client cannot offer it)
    detail: str


@dataclass(frozen=True)
class GatewayTls:
    """Handshakes with the team listener, one protocol version each, and its certificate."""

    handshakes: tuple[TlsHandshake, ...]
    not_after: str | None  # the served certificate's notAfter, ISO 8601 UTC
    error: str | None = None


@dataclass(frozen=True)
class AccessLogProbe:
    """A request carrying markers in its body, Authorization header and query string, and the
    access log lines that appeared after it."""

    path: str
    probe: GatewayProbe
    new_lines: int
    probe_fields: tuple[str, ...]  # the keys of the probe's own line; empty: not found
    leaked: tuple[str, ...]  # where the markers that reached the log were sent ("body", …)
    error: str | None = None


@dataclass(frozen=True)
class GatewayFacts:
    descriptor: str  # the gateway.json the role wrote
    error: str | None  # unreadable or malformed descriptor: nothing else was probed
    engine: str | None = None
    local_listen: str | None = None
    team_listen: str | None = None  # None: team mode is off
    audit_credential_error: str | None = None  # why the audit token could not be used
    probes: tuple[GatewayProbe, ...] = ()
    tls: GatewayTls | None = None
    access_log: AccessLogProbe | None = None
    # listeners in this namespace that could lead to the engine (socket units, socket
    # proxies, the engine's own processes, engine ports), each asked the engine's version
    bypass: tuple[GatewayProbe, ...] = ()


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
    # the known-vulnerability table in use (the wheel's, or the bundle's when newer)
    vulnerabilities: VulnSelection | None = None
    live: LiveFacts | None = None  # None: no engine found
    served: ServedModels | None = None  # None: no running engine
    gpu: GpuFacts | None = None
    cli_users: tuple[CliUserEnv, ...] = ()  # the configured CLI users (--cli-user)
    gateway: GatewayFacts | None = None  # None: no gateway is configured
    # the network namespaces looked at: the audit's own, the engine's, other candidates'
    namespaces: tuple[NamespaceFacts, ...] = ()
    exposure: ExposureFacts | None = None  # None: the engine shares the audit's namespace
    # nginx in front of a sealed engine's socket; None: no host-side listener on its port
    gateway_chain: GatewayChainFacts | None = None

"""OG-CFG: the engine's effective configuration (unit, drop-ins, the process's environment)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from auditor.checks._common import effective_environment, go_bool, is_loopback, require_engine
from auditor.checks.interface import check
from auditor.inventory.interface import EngineFacts, Facts
from auditor.inventory.profiles import profile
from auditor.verdicts import CannotEvaluate, Finding, Status, finding

# Variables whose value changes what the engine does with prompts or the network: a value
# that reaches the process from anywhere but the unit is a difference worth reporting.
_WATCHED_PREFIXES = ("OLLAMA_", "LLAMA_", "GGML_", "CUDA_VISIBLE_DEVICES")
_PROXY_NAMES = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy")


def _engine_env(facts: Facts) -> tuple[EngineFacts, Mapping[str, str], str]:
    """The engine and the environment it runs with (and where that was read)."""
    engine = require_engine(facts, running=False)
    env = effective_environment(engine)
    if env is None:
        raise CannotEvaluate("neither the process environment nor a unit is readable")
    values, source = env
    return engine, values, source


@check("OG-CFG-01")
def dropin_present_and_effective(facts: Facts) -> Finding:
    engine = require_engine(facts, running=False)
    unit = engine.unit
    if unit is None:
        pid = engine.main.pid if engine.main else "?"
        return finding(
            Status.FAIL,
            f"the {engine.kind} engine is not run from a systemd unit",
            [
                ("units looked for", ", ".join(profile(engine.kind).units)),
                ("engine", f"pid {pid}, found by {engine.discovered_by}"),
            ],
        )
    evidence = [
        ("unit", f"{unit.name} ({unit.fragment_path or 'no unit file'}, read from {unit.source})"),
        ("drop-ins loaded", ", ".join(unit.dropin_paths) or "(none)"),
        ("drop-ins on disk", ", ".join(unit.dropins_on_disk) or "(none)"),
    ]
    if not unit.dropins_on_disk and not unit.dropin_paths:
        return finding(Status.FAIL, f"{unit.name} has no drop-in", evidence)
    if not _settings_dropins(engine):
        return finding(
            Status.FAIL,
            f"no drop-in of {unit.name} sets the engine's settings (override.conf missing?); "
            "the others only sandbox or firewall it",
            evidence,
        )
    if unit.source == "systemctl":
        return _effective_in_systemd(engine, evidence)
    return _effective_without_systemd(engine, evidence)


def _settings_dropins(engine: EngineFacts) -> list[str]:
    """Loaded drop-ins that configure the engine itself; unreadable ones get the benefit."""
    unit = engine.unit
    assert unit is not None
    loaded = unit.dropin_paths if unit.source == "systemctl" else unit.dropins_on_disk
    return [
        path for path in loaded
        if path not in unit.dropin_settings
        or profile(engine.kind).configures_engine(unit.dropin_settings[path])
    ]  # fmt: skip


def _effective_in_systemd(engine: EngineFacts, evidence: list[tuple[str, str]]) -> Finding:
    unit = engine.unit
    assert unit is not None
    not_loaded = sorted(set(unit.dropins_on_disk) - set(unit.dropin_paths))
    if not_loaded:
        return finding(
            Status.FAIL,
            "drop-in(s) on disk not loaded by systemd (daemon-reload needed): "
            + ", ".join(not_loaded),
            evidence,
        )
    main_pid = unit.properties.get("MainPID", "0")
    if engine.main is not None and main_pid != str(engine.main.pid):
        return finding(
            Status.FAIL,
            f"the engine (pid {engine.main.pid}) was not started by {unit.name} "
            f"(MainPID {main_pid})",
            evidence,
        )
    if engine.main is None:
        return finding(Status.ERROR, f"{unit.name} is loaded but not running", evidence)
    return finding(Status.PASS, f"{unit.name} runs with its drop-in(s) loaded", evidence)


def _effective_without_systemd(engine: EngineFacts, evidence: list[tuple[str, str]]) -> Finding:
    """Without systemd, the drop-in is effective only if the process carries its settings."""
    unit = engine.unit
    assert unit is not None
    evidence.append(("systemd", "not running: effect judged from the process environment"))
    if engine.main is None or engine.environ is None:
        return finding(Status.ERROR, "the engine's environment cannot be read", evidence)
    missing = _differences(unit.environment, engine.environ)
    if missing:
        evidence += [("differs", line) for line in missing]
        return finding(
            Status.FAIL, "the running engine does not carry the unit's settings", evidence
        )
    return finding(Status.PASS, "the running engine carries the unit's settings", evidence)


def _differences(configured: Mapping[str, str], running: Mapping[str, str]) -> list[str]:
    lines = []
    for key in sorted(configured):
        if running.get(key) != configured[key]:
            lines.append(f"{key}: configured {configured[key]!r}, running {running.get(key)!r}")
    for key in sorted(set(running) - set(configured)):
        if key.startswith(_WATCHED_PREFIXES) or key.lower() in _PROXY_NAMES:
            lines.append(f"{key}: not configured, running {running[key]!r}")
    return lines


@check("OG-CFG-02")
def running_environment_matches(facts: Facts) -> Finding:
    engine = require_engine(facts, running=True)
    if engine.unit is None:
        return finding(
            Status.NOT_APPLICABLE,
            "the engine is not run from a systemd unit: no configured environment (see OG-CFG-01)",
        )
    if engine.environ is None:
        pid = engine.main.pid if engine.main else "?"
        return finding(Status.ERROR, f"/proc/{pid}/environ is unreadable (run as root)")
    differences = _differences(engine.unit.environment, engine.environ)
    evidence = [("configured", _render(engine.unit.environment))]
    evidence += [("differs", line) for line in differences]
    if differences:
        return finding(
            Status.FAIL,
            f"{len(differences)} variable(s) differ between {engine.unit.name} and the process",
            evidence,
        )
    return finding(Status.PASS, "the process runs with the configured environment", evidence)


def _render(env: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(env.items())) or "(empty)"


@check("OG-CFG-03")
def cloud_features_disabled(facts: Facts) -> Finding:
    engine, values, source = _engine_env(facts)
    by_env = go_bool(values.get("OLLAMA_NO_CLOUD"))
    config = engine.server_config or {}
    by_file = config.get("disable_ollama_cloud") is True
    evidence = [
        ("OLLAMA_NO_CLOUD", f"{values.get('OLLAMA_NO_CLOUD', '(unset)')} (from {source})"),
        (
            "server.json",
            f"{engine.server_config_path or '(unknown)'}: "
            + (engine.server_config_error or (repr(config) if engine.server_config else "missing")),
        ),
    ]
    if by_env or by_file:
        how = " and ".join(
            n for n, ok in (("OLLAMA_NO_CLOUD", by_env), ("server.json", by_file)) if ok
        )
        return finding(Status.PASS, f"cloud features are disabled by {how}", evidence)
    if engine.server_config_error and not by_env:
        return finding(Status.ERROR, f"server.json {engine.server_config_error}", evidence)
    return finding(
        Status.FAIL,
        "cloud features are on: neither OLLAMA_NO_CLOUD nor server.json disables them",
        evidence,
    )


_OFF_VALUES = frozenset({"false", "0", "no", "off"})


def _verbose_flags(argv: tuple[str, ...], flags: tuple[str, ...]) -> list[str]:
    """Verbose flags that are on: llama_cpp.server's `--verbose False` switches it off."""
    found = []
    for index, arg in enumerate(argv):
        name, sep, value = arg.partition("=")
        if name not in flags:
            continue
        if not sep and index + 1 < len(argv) and not argv[index + 1].startswith("-"):
            value = argv[index + 1]
        if value.strip().lower() not in _OFF_VALUES:
            found.append(f"{name} {value}".strip())
    return found


def _command_line(engine: EngineFacts) -> tuple[str, ...]:
    if engine.main is not None:
        return engine.main.cmdline
    if engine.unit is not None:
        return tuple(engine.unit.properties.get("ExecStart", "").split())
    return ()


@check("OG-CFG-04")
def no_prompt_logging(facts: Facts) -> Finding:
    engine, values, source = _engine_env(facts)
    findings = []
    debug = values.get("OLLAMA_DEBUG", "")
    if debug.strip().isdigit() and int(debug) >= 2:
        findings.append(f"OLLAMA_DEBUG={debug} (trace logs model output)")
    if go_bool(values.get("OLLAMA_DEBUG_LOG_REQUESTS")):
        value = values["OLLAMA_DEBUG_LOG_REQUESTS"]
        findings.append(f"OLLAMA_DEBUG_LOG_REQUESTS={value} (request bodies written to files)")
    argv = _command_line(engine)
    flags = _verbose_flags(argv, profile(engine.kind).verbose_flags)
    findings += [f"command line flag {flag}" for flag in flags]
    evidence = [("environment", source), ("command line", " ".join(argv) or "(unknown)")]
    evidence += [("finding", f) for f in findings]
    if findings:
        return finding(Status.FAIL, "prompt-logging settings: " + "; ".join(findings), evidence)
    return finding(Status.PASS, "no prompt-logging debug setting", evidence)


@check("OG-CFG-05")
def no_proxy(facts: Facts) -> Finding:
    engine, values, source = _engine_env(facts)
    sources = [values] + ([engine.unit.environment] if engine.unit else [])
    proxies = sorted(
        {f"{k}={v}" for env_map in sources for k, v in env_map.items()
         if k.lower() in _PROXY_NAMES and v.strip()}
    )  # fmt: skip
    evidence = [("environment", source)] + [("proxy", p) for p in proxies]
    if proxies:
        return finding(
            Status.FAIL, "proxy variables reach the engine: " + ", ".join(proxies), evidence
        )
    return finding(Status.PASS, "no proxy variable in the engine's environment", evidence)


# Origin schemes of local apps that Ollama itself allows; a web origin is what widens.
_APP_SCHEMES = ("app", "file", "tauri", "vscode-webview", "vscode-file")


def widened_origins(value: str) -> list[str]:
    widened = []
    for origin in (o.strip() for o in value.split(",")):
        if not origin:
            continue
        parts = urlsplit(origin)
        is_app = parts.scheme in _APP_SCHEMES
        is_local_web = parts.scheme in ("http", "https") and is_loopback(parts.hostname)
        if origin in ("*", "null") or not (is_app or is_local_web):
            widened.append(origin)
    return widened


def _cors_probe(facts: Facts) -> tuple[str | None, list[tuple[str, str]]]:
    """What the running engine allowed a foreign origin (None: did not allow it), and the
    evidence; CannotEvaluate-worthy absence is signalled by an empty evidence list."""
    live = facts.live
    probe = live.cors if live else None
    if live is None or probe is None or probe.status is None:
        return None, []
    allowed = probe.headers.get("access-control-allow-origin")
    evidence = [
        ("CORS probe", f"{probe.method} {probe.url} Origin: {live.cors_origin} -> HTTP "
         f"{probe.status}, Access-Control-Allow-Origin: {allowed or '(none)'}"),
    ]  # fmt: skip
    return (allowed if allowed in ("*", live.cors_origin) else None), evidence


@check("OG-CFG-06")
def cors_origins_not_widened(facts: Facts) -> Finding:
    engine = require_engine(facts, running=False)
    variable = profile(engine.kind).origins_variable
    allowed, evidence = _cors_probe(facts)
    widened: list[str] = []
    if variable is not None:
        _engine, values, source = _engine_env(facts)
        origins = values.get(variable, "")
        evidence.append((variable, f"{origins or '(unset)'} (from {source})"))
        widened = widened_origins(origins)
    elif not evidence:
        raise CannotEvaluate(
            f"the {engine.kind} engine has no CORS setting and did not answer the CORS probe"
        )
    if allowed is not None:
        return finding(
            Status.FAIL,
            f"the running engine lets any web page call it: a request from "
            f"{facts.live.cors_origin if facts.live else '?'} is answered with "
            f"Access-Control-Allow-Origin: {allowed}",
            evidence,
        )
    if widened:
        return finding(Status.FAIL, "CORS widened to: " + ", ".join(widened), evidence)
    return finding(Status.PASS, "no web origin is allowed to call the engine", evidence)


def _cloud_reply(facts: Facts) -> tuple[bool | None, list[tuple[str, str]]]:
    """The running server's /api/status: cloud disabled (True/False), or None with why."""
    live = facts.live
    probe = live.cloud_status if live else None
    if probe is None:
        return None, [("/api/status", "not asked (the engine is not running)")]
    if probe.status is None:
        return None, [("/api/status", f"no answer: {probe.error}")]
    cloud = probe.body.get("cloud") if isinstance(probe.body, dict) else None
    disabled = cloud.get("disabled") if isinstance(cloud, dict) else None
    source = cloud.get("source") if isinstance(cloud, dict) else None
    evidence = [("/api/status", f"HTTP {probe.status}: disabled={disabled}, source={source}")]
    if probe.status != 200 or not isinstance(disabled, bool):
        return None, evidence
    return disabled, evidence


def _cloud_log(facts: Facts) -> tuple[bool | None, list[tuple[str, str]]]:
    log = facts.live.cloud_log if facts.live else None
    if log is None:
        return None, [("start-up log", "not read (no systemd unit)")]
    if log.line is None:
        why = log.error or f"no 'Ollama cloud disabled' line since the start ({log.invocation})"
        return None, [("start-up log", why)]
    match = re.search(r"cloud disabled: (true|false)", log.line)
    evidence = [("start-up log", f"{log.unit} run {log.invocation}: {log.line}")]
    return (match.group(1) == "true" if match else None), evidence


@check("OG-CFG-07")
def running_server_says_cloud_disabled(facts: Facts) -> Finding:
    require_engine(facts, running=True)
    status, evidence = _cloud_reply(facts)
    logged, log_evidence = _cloud_log(facts)
    evidence += log_evidence
    if status is False or logged is False:
        return finding(
            Status.FAIL, "the running server says its cloud features are enabled", evidence
        )
    if status is None:
        probe = facts.live.cloud_status if facts.live else None
        if probe is not None and probe.status == 404:
            raise CannotEvaluate(
                "the running server has no /api/status (older than 0.16.2, which added "
                "OLLAMA_NO_CLOUD): it cannot say whether cloud features are off",
                evidence,
            )
        raise CannotEvaluate("the running server did not state its cloud status", evidence)
    note = "" if logged else " (its start-up log line was not found)"
    return finding(
        Status.PASS, f"the running server says cloud features are disabled{note}", evidence
    )

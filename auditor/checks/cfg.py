"""OG-CFG: the engine's effective configuration (unit, drop-ins, the process's environment)."""

from __future__ import annotations

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


@check("OG-CFG-06")
def cors_origins_not_widened(facts: Facts) -> Finding:
    _engine, values, source = _engine_env(facts)
    origins = values.get("OLLAMA_ORIGINS", "")
    evidence = [("OLLAMA_ORIGINS", f"{origins or '(unset)'} (from {source})")]
    widened = widened_origins(origins)
    if widened:
        return finding(Status.FAIL, "CORS widened to: " + ", ".join(widened), evidence)
    return finding(Status.PASS, "no web origin added to the CORS allow-list", evidence)

"""OG-CFG checks on recorded facts."""

from __future__ import annotations

import dataclasses

import pytest

from auditor.checks import cfg
from auditor.verdicts import Status
from tests.unit.audit_facts import UNIT, engine, facts

ENV = {"OLLAMA_HOST": "127.0.0.1:11434", "OLLAMA_NO_CLOUD": "1", "PATH": "/usr/bin"}


def test_dropin_loaded_and_running_passes() -> None:
    assert cfg.dropin_present_and_effective(facts()).status is Status.PASS


def test_no_unit_or_no_dropin_fails() -> None:
    assert cfg.dropin_present_and_effective(facts(engine=engine(unit=None))).status is Status.FAIL
    bare = dataclasses.replace(UNIT, dropin_paths=(), dropins_on_disk=())
    assert cfg.dropin_present_and_effective(facts(engine=engine(unit=bare))).status is Status.FAIL


def test_dropin_on_disk_not_loaded_fails() -> None:
    stale = dataclasses.replace(UNIT, dropins_on_disk=(*UNIT.dropins_on_disk, "/etc/x.d/new.conf"))
    result = cfg.dropin_present_and_effective(facts(engine=engine(unit=stale)))
    assert result.status is Status.FAIL and "daemon-reload" in result.summary


def test_engine_not_started_by_unit_fails() -> None:
    other = dataclasses.replace(UNIT, properties={**UNIT.properties, "MainPID": "1"})
    assert cfg.dropin_present_and_effective(facts(engine=engine(unit=other))).status is Status.FAIL


def test_without_systemd_the_process_environment_decides() -> None:
    files_unit = dataclasses.replace(UNIT, source="files")
    same = facts(engine=engine(unit=files_unit), systemd_running=False)
    assert cfg.dropin_present_and_effective(same).status is Status.PASS
    differs = facts(engine=engine(unit=files_unit, environ={"PATH": "/bin"}), systemd_running=False)
    assert cfg.dropin_present_and_effective(differs).status is Status.FAIL


def test_running_environment_matches_and_differs() -> None:
    assert cfg.running_environment_matches(facts()).status is Status.PASS
    edited = facts(engine=engine(environ={**ENV, "OLLAMA_HOST": "0.0.0.0:11434"}))
    result = cfg.running_environment_matches(edited)
    assert result.status is Status.FAIL
    assert any("OLLAMA_HOST" in e.value for e in result.evidence)
    extra = facts(engine=engine(environ={**ENV, "OLLAMA_DEBUG": "2", "HTTPS_PROXY": "http://p"}))
    assert cfg.running_environment_matches(extra).status is Status.FAIL


def test_running_environment_unreadable_is_error() -> None:
    assert (
        cfg.running_environment_matches(facts(engine=engine(environ=None))).status is Status.ERROR
    )


@pytest.mark.parametrize(
    ("env", "server", "status"),
    [
        ({"OLLAMA_NO_CLOUD": "1"}, None, Status.PASS),
        ({"OLLAMA_NO_CLOUD": "true"}, None, Status.PASS),
        ({"OLLAMA_NO_CLOUD": "yes"}, None, Status.PASS),  # Ollama treats unparsable as true
        ({"OLLAMA_NO_CLOUD": "0"}, None, Status.FAIL),
        ({}, {"disable_ollama_cloud": True}, Status.PASS),
        ({}, {"disable_ollama_cloud": False}, Status.FAIL),
        ({}, None, Status.FAIL),
    ],
)
def test_cloud_features(
    env: dict[str, str], server: dict[str, object] | None, status: Status
) -> None:
    result = cfg.cloud_features_disabled(facts(engine=engine(environ=env, server_config=server)))
    assert result.status is status


def test_prompt_logging_flags() -> None:
    assert cfg.no_prompt_logging(facts()).status is Status.PASS
    for env in ({"OLLAMA_DEBUG": "2"}, {"OLLAMA_DEBUG_LOG_REQUESTS": "1"}):
        assert cfg.no_prompt_logging(facts(engine=engine(environ=env))).status is Status.FAIL
    assert (
        cfg.no_prompt_logging(facts(engine=engine(environ={"OLLAMA_DEBUG": "1"}))).status
        is Status.PASS
    )


def test_llama_server_verbose_prompt_flag() -> None:
    main = dataclasses.replace(
        engine().main,  # type: ignore[arg-type]
        name="llama-server", cmdline=("llama-server", "-m", "m.gguf", "--verbose-prompt"),
    )  # fmt: skip
    llama = facts(engine=engine(kind="llamacpp", main=main, unit=None, environ={}))
    assert cfg.no_prompt_logging(llama).status is Status.FAIL


def test_proxy_in_process_or_unit() -> None:
    assert cfg.no_proxy(facts()).status is Status.PASS
    assert (
        cfg.no_proxy(facts(engine=engine(environ={"https_proxy": "http://p:3128"}))).status
        is Status.FAIL
    )
    unit = dataclasses.replace(UNIT, environment={"ALL_PROXY": "socks5://p"})
    assert cfg.no_proxy(facts(engine=engine(unit=unit))).status is Status.FAIL
    assert cfg.no_proxy(facts(engine=engine(environ={"NO_PROXY": "*"}))).status is Status.PASS


@pytest.mark.parametrize(
    ("origins", "widened"),
    [
        ("", []),
        ("app://*,vscode-webview://*,http://localhost:3000,http://127.0.0.1", []),
        ("*", ["*"]),
        ("https://example.com,app://x", ["https://example.com"]),
        ("http://192.168.1.5:8080", ["http://192.168.1.5:8080"]),
        ("null", ["null"]),
    ],
)
def test_cors_origins(origins: str, widened: list[str]) -> None:
    assert cfg.widened_origins(origins) == widened
    status = cfg.cors_origins_not_widened(
        facts(engine=engine(environ={"OLLAMA_ORIGINS": origins}))
    ).status
    assert status is (Status.FAIL if widened else Status.PASS)


def test_env_from_unit_when_process_unreadable() -> None:
    result = cfg.no_proxy(facts(engine=engine(environ=None)))
    assert result.status is Status.PASS
    assert "unit" in result.evidence[0].value


def test_only_sandbox_and_firewall_dropins_fail() -> None:
    """Deleting override.conf while the hardening and egress drop-ins stay must not pass."""
    sandbox = "/etc/systemd/system/ollama.service.d/50-offgrid-hardening.conf"
    egress = "/etc/systemd/system/ollama.service.d/60-offgrid-egress.conf"
    without_settings = dataclasses.replace(
        UNIT,
        dropin_paths=(sandbox, egress),
        dropins_on_disk=(sandbox, egress),
        dropin_settings={sandbox: ("NoNewPrivileges", "ProtectSystem"), egress: ("IPAddressDeny",)},
    )
    result = cfg.dropin_present_and_effective(facts(engine=engine(unit=without_settings)))
    assert result.status is Status.FAIL
    assert "override.conf" in result.summary


def test_settings_dropin_counts_by_what_it_sets() -> None:
    override = UNIT.dropin_paths[0]
    with_settings = dataclasses.replace(
        UNIT, dropin_settings={override: ("Environment:OLLAMA_HOST", "Environment:OLLAMA_NO_CLOUD")}
    )
    result = cfg.dropin_present_and_effective(facts(engine=engine(unit=with_settings)))
    assert result.status is Status.PASS


@pytest.mark.parametrize(
    ("args", "fails"),
    [
        (("--verbose", "False"), False),
        (("--verbose=false",), False),
        (("--verbose", "True"), True),
        (("--verbose",), True),
        (("--log-verbosity", "0"), False),
    ],
)
def test_llama_cpp_verbose_value_is_read(args: tuple[str, ...], fails: bool) -> None:
    cmdline = ("python3", "-m", "llama_cpp.server", "--model", "m.gguf", *args)
    main = dataclasses.replace(engine().main, name="python3", cmdline=cmdline)  # type: ignore[arg-type]
    llama = engine(kind="llamacpp", main=main, unit=None, environ={})
    status = cfg.no_prompt_logging(facts(engine=llama)).status
    assert status is (Status.FAIL if fails else Status.PASS)

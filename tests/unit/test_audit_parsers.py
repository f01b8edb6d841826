"""nft JSON, IDE settings (JSON with comments, Continue YAML), ss-free helpers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.errors import InputError
from auditor.inventory import discovery, hardening, ide, nft
from auditor.inventory.egress_probe import parse_target
from auditor.inventory.interface import ProcessFact
from auditor.inventory.ollama import parse_ollama_host
from auditor.inventory.processes import descendants
from auditor.inventory.profiles import profile

NFT = {
    "nftables": [
        {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
        {"table": {"family": "inet", "name": "offgrid_egress", "handle": 1}},
        {"rule": {
            "family": "inet", "table": "offgrid_egress", "chain": "output", "handle": 4,
            "comment": "OG-NET-04 engine egress",
            "expr": [
                {"match": {"op": "==", "left": {"meta": {"key": "skuid"}}, "right": 999}},
                {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "lo"}},
                {"counter": {"packets": 12, "bytes": 720}},
                {"reject": None},
            ],
        }},
        {"rule": {
            "family": "inet", "table": "filter", "chain": "output", "handle": 9,
            "expr": [{"counter": {"packets": 1, "bytes": 2}}, {"accept": None}],
        }},
    ]
}  # fmt: skip


def test_nft_rules_matching_a_user() -> None:
    rules = nft.parse_ruleset(json.dumps(NFT))
    assert len(rules) == 1  # the rule without skuid is not about a user
    rule = rules[0]
    assert (rule.skuid, rule.verdict, rule.packets, rule.bytes) == ("999", "reject", 12, 720)
    assert rule.comment == "OG-NET-04 engine egress"
    assert "meta skuid == 999" in rule.text and 'meta oifname != "lo"' in rule.text


def test_nft_empty_ruleset() -> None:
    assert nft.parse_ruleset('{"nftables": [{"metainfo": {}}]}') == ()


def test_jsonc_settings() -> None:
    text = """{
      // VS Code writes comments
      "telemetry.telemetryLevel": "off", /* and blocks */
      "url": "http://a//b, }",
      "list": [1, 2,],
    }"""
    assert ide.parse_jsonc(text) == {
        "telemetry.telemetryLevel": "off", "url": "http://a//b, }", "list": [1, 2],
    }  # fmt: skip
    with pytest.raises(ValueError):
        ide.parse_jsonc("[1]")


def test_continue_yaml_top_level_keys() -> None:
    text = (
        "name: cfg\nallowAnonymousTelemetry: false # off\n"
        "models:\n  - name: x\n    allowAnonymousTelemetry: true\n"
    )
    assert ide.parse_continue_yaml(text) == {
        "name": "cfg",
        "allowAnonymousTelemetry": False,
        "models": "",
    }


def test_user_files_only_for_products_in_use(tmp_path: Path) -> None:
    settings = tmp_path / ".config" / "Code" / "User" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text('{"telemetry.telemetryLevel": "off"}')
    (tmp_path / ".continue").mkdir()
    (tmp_path / ".continue" / "config.json").write_text("{oops")
    files = ide.user_files("dev", tmp_path)
    vscode = [f for f in files if f.kind == "vscode"]
    assert [f.product for f in vscode] == ["Code"]
    assert vscode[0].settings == {"telemetry.telemetryLevel": "off"}
    broken = [f for f in files if f.kind == "continue" and f.exists]
    assert broken[0].error is not None and broken[0].error.startswith("malformed")
    shared = [f for f in files if f.kind == "continue-shared"]
    assert [f.exists for f in shared] == [False]


def test_continue_shared_config_is_read(tmp_path: Path) -> None:
    index = tmp_path / ".continue" / "index"
    index.mkdir(parents=True)
    (index / "globalContext.json").write_text(
        '{"sharedConfig": {"allowAnonymousTelemetry": false}, "selectedModelsByProfileId": {}}'
    )
    (shared,) = [f for f in ide.user_files("dev", tmp_path) if f.kind == "continue-shared"]
    assert shared.settings == {
        "sharedConfig": {"allowAnonymousTelemetry": False},
        "selectedModelsByProfileId": {},
    }


def test_security_output_parsing() -> None:
    text = "  ✗ PrivateNetwork= ...\n→ Overall exposure level for ollama.service: 9.2 UNSAFE 😨\n"
    assert hardening.parse_security_output(text) == (9.2, "UNSAFE")
    assert hardening.parse_security_output("nothing") is None


def _proc(name: str, cmdline: tuple[str, ...], exe: str | None = None) -> ProcessFact:
    return ProcessFact(10, 1.0, 1, name, exe, cmdline, "root", 0)


@pytest.mark.parametrize(
    ("fact", "kind"),
    [
        (_proc("ollama", ("/usr/local/bin/ollama", "serve")), "ollama"),
        (_proc("ollama", ("/usr/local/bin/ollama", "runner", "--model", "x")), None),
        (_proc("python3", ("python3", "-m", "llama_cpp.server", "--model", "m")), "llamacpp"),
        (_proc("llama-server", ("/opt/llama-server", "-m", "m.gguf")), "llamacpp"),
        (_proc("python3", ("python3", "-m", "http.server")), None),
    ],
)
def test_engine_classification(fact: ProcessFact, kind: str | None) -> None:
    assert discovery.classify(fact) == kind


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ("127.0.0.1", 11434)),
        ("0.0.0.0", ("0.0.0.0", 11434)),
        ("http://127.0.0.1:8080", ("127.0.0.1", 8080)),
        (":11434", ("0.0.0.0", 11434)),
        ("[::1]:9000", ("::1", 9000)),
    ],
)
def test_ollama_host(value: str | None, expected: tuple[str, int]) -> None:
    assert parse_ollama_host(value) == expected


def test_llamacpp_bind_from_command_line() -> None:
    main = _proc("python3", ("python3", "-m", "llama_cpp.server", "--host=0.0.0.0", "--port", "9"))
    assert profile("llamacpp").configured_bind(main, {}) == ("0.0.0.0", 9)
    default = _proc("python3", ("python3", "-m", "llama_cpp.server"))
    assert profile("llamacpp").configured_bind(default, {}) == ("localhost", 8000)


@pytest.mark.parametrize(
    "bad", ["127.0.0.1:80", "[::1]:80", "example.com:80", "192.0.2.1", "192.0.2.1:0"]
)
def test_probe_target_validation(bad: str) -> None:
    with pytest.raises(InputError):
        parse_target(bad)


def test_probe_target_ok() -> None:
    assert parse_target("[2001:db8::1]:443") == ("2001:db8::1", 443)
    assert parse_target("198.18.0.2:8080") == ("198.18.0.2", 8080)


def _tree_proc(pid: int, ppid: int, created: float, argv: tuple[str, ...]) -> ProcessFact:
    return ProcessFact(pid, created, ppid, "ollama", "/usr/bin/ollama", argv, "ollama", 999)


def test_discovery_picks_the_oldest_server_and_keeps_runners_in_its_tree() -> None:
    table = [
        _tree_proc(1, 0, 1.0, ("/sbin/init",)),
        _tree_proc(50, 1, 10.0, ("/usr/bin/ollama", "serve")),
        _tree_proc(51, 50, 11.0, ("/usr/bin/ollama", "runner", "--model", "m")),
        _tree_proc(52, 51, 12.0, ("/usr/bin/ollama", "serve")),  # a child, not a second server
        _tree_proc(90, 1, 20.0, ("/usr/bin/ollama", "serve")),  # a second server
        _tree_proc(53, 50, 5.0, ("stale",)),  # reused pid: created before its "parent"
    ]
    found = discovery.find_by_process(table, discovery.KINDS)
    assert found is not None
    main, kind, others = found
    assert (main.pid, kind, others) == (50, "ollama", (90,))
    assert [p.pid for p in descendants(main, table)] == [50, 51, 52]

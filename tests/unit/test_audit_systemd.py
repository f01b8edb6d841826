"""Unit files, drop-ins, Environment= quoting and EnvironmentFile= on recorded inputs."""

from __future__ import annotations

from pathlib import Path

from auditor.inventory import systemd

OLLAMA_UNIT = """\
[Unit]
Description=Ollama Service
After=network-online.target

[Service]
ExecStart=/usr/local/bin/ollama serve
User=ollama
Group=ollama
Restart=always
RestartSec=3
Environment="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"

[Install]
WantedBy=default.target
"""


def test_parse_unit_text_sections_comments_and_continuations() -> None:
    text = "# c\n; c\n[Service]\nExecStart=/bin/x \\\n  --flag\nUser = ollama\n"
    items = systemd.parse_unit_text(text, "u")
    assert [(a.section, a.key, a.value) for a in items] == [
        ("Service", "ExecStart", "/bin/x  --flag"),
        ("Service", "User", "ollama"),
    ]


def test_environment_quoting_like_systemd() -> None:
    parse = systemd.parse_environment_value
    assert parse('"A=1" B=2') == [("A", "1"), ("B", "2")]
    assert parse('"C=with space" D="x y"') == [("C", "with space"), ("D", "x y")]
    assert parse("E='single quoted' F=a\\ b") == [("E", "single quoted"), ("F", "a b")]
    assert parse('G="tab\\there" novalue H=') == [("G", "tab\there"), ("H", "")]


def test_environment_file_parsing() -> None:
    text = "# comment\n; other\nexport A=1\nB=\"two words\"\nC='q'\n\nnot a pair\n"
    assert systemd.parse_environment_file(text) == [("A", "1"), ("B", "two words"), ("C", "q")]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_dropins_mask_by_name_and_apply_in_lexical_order(tmp_path: Path) -> None:
    etc, run, lib = tmp_path / "etc", tmp_path / "run", tmp_path / "lib"
    _write(lib / "ollama.service", OLLAMA_UNIT)
    _write(etc / "ollama.service", OLLAMA_UNIT)  # shadows the vendor unit
    _write(lib / "ollama.service.d" / "10-vendor.conf", "[Service]\n")
    _write(lib / "ollama.service.d" / "50-override.conf", "[Service]\nEnvironment=MASKED=1\n")
    _write(etc / "ollama.service.d" / "50-override.conf", "[Service]\n")
    _write(run / "ollama.service.d" / "20-runtime.conf", "[Service]\n")
    _write(etc / "service.d" / "05-all.conf", "[Service]\n")
    files = systemd.find_unit_files("ollama.service", (etc, run, lib))
    assert files.fragment == etc / "ollama.service"
    assert [p.relative_to(tmp_path).as_posix() for p in files.dropins] == [
        "etc/service.d/05-all.conf",
        "lib/ollama.service.d/10-vendor.conf",
        "run/ollama.service.d/20-runtime.conf",
        "etc/ollama.service.d/50-override.conf",
    ]


def test_unit_from_files_merges_environment(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    _write(etc / "ollama.service", OLLAMA_UNIT)
    envfile = _write(tmp_path / "ollama.env", "OLLAMA_ORIGINS=app://x\nOLLAMA_HOST=127.0.0.1:1\n")
    _write(
        etc / "ollama.service.d" / "10-a.conf",
        '[Service]\nEnvironment="OLLAMA_HOST=0.0.0.0:11434" OLLAMA_DEBUG=2\nIPAddressDeny=any\n',
    )
    _write(
        etc / "ollama.service.d" / "20-b.conf",
        "[Service]\nEnvironment=\nEnvironment=OLLAMA_HOST=127.0.0.1:11434 OLLAMA_NO_CLOUD=1\n"
        f"EnvironmentFile=-{tmp_path}/missing.env\nEnvironmentFile={envfile}\n"
        "IPAddressAllow=localhost\n",
    )
    unit = systemd.unit_from_files("ollama.service", (etc,))
    assert unit is not None
    assert unit.source == "files"
    # the empty Environment= in 20-b reset PATH and OLLAMA_DEBUG; the file overrides the unit
    assert dict(unit.environment) == {
        "OLLAMA_HOST": "127.0.0.1:1",
        "OLLAMA_NO_CLOUD": "1",
        "OLLAMA_ORIGINS": "app://x",
    }
    assert unit.properties["User"] == "ollama"
    assert unit.properties["IPAddressDeny"] == "any"
    assert unit.properties["IPAddressAllow"] == "localhost"
    assert "EnvironmentFileErrors" not in unit.properties  # the missing file was optional
    assert len(unit.dropin_paths) == 2


def test_missing_required_environment_file_is_recorded(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    _write(etc / "x.service", f"[Service]\nEnvironmentFile={tmp_path}/nope.env\n")
    unit = systemd.unit_from_files("x.service", (etc,))
    assert unit is not None and "nope.env" in unit.properties["EnvironmentFileErrors"]


def test_no_unit_at_all(tmp_path: Path) -> None:
    assert systemd.unit_from_files("ollama.service", (tmp_path,)) is None


SHOW = """\
Id=ollama.service
LoadState=loaded
ActiveState=active
FragmentPath=/etc/systemd/system/ollama.service
DropInPaths=/etc/systemd/system/ollama.service.d/override.conf /run/systemd/system/x.d/50-x.conf
Environment=PATH=/usr/bin "OLLAMA_ORIGINS=app://a app://b" OLLAMA_NO_CLOUD=1
EnvironmentFiles=
User=ollama
Group=ollama
IPAddressDeny=0.0.0.0/0 ::/0
IPAddressAllow=127.0.0.0/8 ::1/128
ExecStart={ path=/usr/local/bin/ollama ; argv[]=/usr/local/bin/ollama serve ; ignore_errors=no }
MainPID=812
ControlGroup=/system.slice/ollama.service
"""


def test_unit_from_systemctl_show() -> None:
    unit = systemd.unit_from_show("ollama.service", SHOW)
    assert unit is not None and unit.source == "systemctl"
    assert unit.environment["OLLAMA_ORIGINS"] == "app://a app://b"
    assert unit.dropin_paths[1] == "/run/systemd/system/x.d/50-x.conf"
    assert unit.properties["MainPID"] == "812"


def test_unknown_unit_from_systemctl_show() -> None:
    assert systemd.unit_from_show("nope.service", "Id=nope.service\nLoadState=not-found\n") is None


def test_dropin_settings_name_variables_and_keys(tmp_path: Path) -> None:
    override = tmp_path / "override.conf"
    override.write_text('[Service]\nEnvironment="OLLAMA_HOST=127.0.0.1:11434" OLLAMA_NO_CLOUD=1\n')
    sandbox = tmp_path / "hardening.conf"
    sandbox.write_text("[Unit]\nDescription=x\n[Service]\nNoNewPrivileges=yes\nIPAddressDeny=any\n")
    settings = systemd.dropin_settings([override, sandbox, tmp_path / "missing.conf"])
    assert settings == {
        str(override): ("Environment:OLLAMA_HOST", "Environment:OLLAMA_NO_CLOUD"),
        str(sandbox): ("NoNewPrivileges", "IPAddressDeny"),
    }

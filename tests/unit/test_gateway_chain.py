"""OG-NET-02 for a sealed engine behind the gateway: nginx on the engine's port is the
engine's gateway only when the whole chain (nginx's configuration -> unix socket held by a
systemd socket unit -> systemd-socket-proxyd in the engine's namespace -> the engine's
loopback port) is shown by the facts; each link broken on purpose fails it. Plus the
nginx configuration reader and the collectors' parsers."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from auditor.checks._common import engine_view
from auditor.checks._gateway_chain import relate
from auditor.checks.net import engine_listens_on_loopback, nothing_else_on_engine_port
from auditor.inventory import gateway_chain, nginx_conf
from auditor.inventory.interface import (
    ExposureFacts,
    Facts,
    GatewayChainFacts,
    NamespaceFacts,
    NginxMaster,
    NginxServer,
    ServiceMain,
    SocketUnitListen,
    UnixListener,
)
from tests.unit.audit_facts import ENGINE_PID, engine, facts, proc, sock

ENGINE_NS, HOST_NS = "net:[4026532291]", "net:[4026531840]"
PORT = 11434
PATH = "/run/offgrid-seal/ollama.sock"
MASTER, WORKER, PROXYD_PID = 800, 801, 900
PROXY_UNIT, SOCKET_UNIT = "offgrid-seal-ollama.service", "offgrid-seal-ollama.socket"
NGINX_TITLE = ("nginx:", "master", "process", "/usr/sbin/nginx", "-e", "/var/log/e.log", "-c",
               "/etc/offgrid-gateway/nginx.conf", "-g", "daemon", "off;")  # fmt: skip


def _space() -> NamespaceFacts:
    return NamespaceFacts(
        namespace=ENGINE_NS, pid=ENGINE_PID, role="engine", shares_audit_namespace=False,
        sockets=(sock("127.0.0.1", PORT),), interfaces=(), routes=(), error=None,
    )  # fmt: skip


def _chain(**changes: Any) -> GatewayChainFacts:
    server = NginxServer("http", ("127.0.0.1:11434",), (f"unix:{PATH}",))
    team = NginxServer("http", ("0.0.0.0:11443",), (f"unix:{PATH}",))
    base = GatewayChainFacts(
        masters=(NginxMaster(MASTER, "/etc/offgrid-gateway/nginx.conf", (server, team)),),
        socket_units=(SocketUnitListen(PATH, "Stream", SOCKET_UNIT, (PROXY_UNIT,)),),
        unix_listeners=(UnixListener(PATH, 5555, PROXYD_PID),),
        services=(ServiceMain(PROXY_UNIT, PROXYD_PID, ENGINE_NS),),
    )
    return dataclasses.replace(base, **changes)


def sealed(chain: GatewayChainFacts | None = None, proxy_target: str = "127.0.0.1:11434",
           listener_pid: int = WORKER) -> Facts:  # fmt: skip
    processes = (
        *facts().processes,
        proc(MASTER, name="nginx", cmdline=NGINX_TITLE),
        proc(WORKER, ppid=MASTER, name="nginx", cmdline=("nginx:", "worker", "process")),
        proc(PROXYD_PID, name="systemd-socket-proxyd",
             cmdline=("/lib/systemd/systemd-socket-proxyd", proxy_target)),
    )  # fmt: skip
    return facts(
        engine=engine(foreign_netns=True),
        sockets=(sock("127.0.0.1", PORT, pid=listener_pid),),
        processes=processes,
        namespaces=(_space(),),
        exposure=ExposureFacts({MASTER: HOST_NS, WORKER: HOST_NS}, (), None),
        gateway_chain=_chain() if chain is None else chain,
    )


def test_the_proved_chain_is_the_engines_gateway() -> None:
    result = nothing_else_on_engine_port(sealed())
    assert result.status == "pass", result.summary
    assert "gateway" in result.summary
    shown = {e.label: e.value for e in result.evidence}
    assert PATH in shown["the engine's gateway"] and ENGINE_NS in shown["the engine's gateway"]


def test_the_master_itself_holding_the_listener_is_related_too() -> None:
    assert nothing_else_on_engine_port(sealed(listener_pid=MASTER)).status == "pass"


def _fails(f: Facts, words: str) -> None:
    result = nothing_else_on_engine_port(f)
    assert result.status == "fail", result.summary
    assert "not the engine's gateway" in result.summary and words in result.summary


def _server(targets: tuple[str, ...], others: tuple[str, ...] = ()) -> NginxMaster:
    server = NginxServer("http", ("127.0.0.1:11434",), targets, others)
    return NginxMaster(MASTER, "/etc/offgrid-gateway/nginx.conf", (server,))


@pytest.mark.parametrize(
    ("chain", "words"),
    [
        (_chain(masters=(_server(("unix:/run/elsewhere.sock",)),)), "no systemd stream socket"),
        (_chain(masters=(_server(("127.0.0.1:9000",)),)), "not to one unix socket"),
        (_chain(masters=(_server((f"unix:{PATH}", "10.0.0.9:80")),)), "not to one unix socket"),
        (_chain(masters=(_server((f"unix:{PATH}",), ("fastcgi_pass",)),)), "fastcgi_pass"),
        (_chain(masters=(_server(()),)), "not to one unix socket"),
        (_chain(masters=(NginxMaster(MASTER, "?", (), "cannot read x"),)), "cannot read x"),
        (_chain(masters=(NginxMaster(MASTER, "/c", (NginxServer("http", ("*:81",), ()),)),)),
         "no server"),
        (_chain(masters=()), "not an nginx master"),
        (_chain(socket_units=()), "no systemd stream socket"),
        (_chain(socket_units=(SocketUnitListen(PATH, "Datagram", SOCKET_UNIT, (PROXY_UNIT,)),)),
         "no systemd stream socket"),
        (_chain(socket_units=None, error="systemctl list-sockets could not be run"),
         "list-sockets"),
        (_chain(socket_units=(SocketUnitListen(PATH, "Stream", SOCKET_UNIT, ()),)),
         "activates no service"),
        (_chain(services=(ServiceMain(PROXY_UNIT, None, None),)), "no main process"),
        (_chain(services=(ServiceMain(PROXY_UNIT, PROXYD_PID, HOST_NS),)), "not the engine's"),
        (_chain(unix_listeners=(UnixListener(PATH, 5555, PROXYD_PID),
                                UnixListener(PATH, 6666, 4321))), "inode 6666 of pid 4321"),
        (_chain(unix_listeners=()), "listened on by nothing"),
    ],
)  # fmt: skip
def test_each_broken_link_fails_og_net_02(chain: GatewayChainFacts, words: str) -> None:
    _fails(sealed(chain), words)


def test_a_proxy_forwarding_elsewhere_fails() -> None:
    _fails(sealed(proxy_target="127.0.0.1:9"), "forwards to 127.0.0.1:9")
    _fails(sealed(proxy_target="10.1.2.3:11434"), "forwards to 10.1.2.3:11434")


def test_a_service_that_is_not_the_proxy_fails() -> None:
    f = sealed()
    other = tuple(
        dataclasses.replace(p, cmdline=("/usr/bin/socat", "-", "TCP:127.0.0.1:11434"))
        if p.pid == PROXYD_PID else p
        for p in f.processes
    )  # fmt: skip
    _fails(dataclasses.replace(f, processes=other), "is not systemd-socket-proxyd")


def test_without_chain_facts_nginx_on_the_engine_port_still_fails() -> None:
    f = sealed()
    _fails(dataclasses.replace(f, gateway_chain=None), "no gateway facts")


def test_an_engine_that_no_longer_listens_breaks_the_last_link() -> None:
    f = sealed()
    gone = dataclasses.replace(_space(), sockets=())
    result = relate(f.sockets[0], f, engine_view(dataclasses.replace(f, namespaces=(gone,))))
    assert not result.proved and "not to the engine" in result.text


# ---------------------------------------------------------------- nginx's configuration

CONF = """
# comment
load_module /usr/lib/nginx/modules/ngx_http_js_module.so;
events { worker_connections 1024; }
http {
    map $offgrid_token_sha256 $entry { default ""; include tokens.map; }
    map "$request_method $request_uri" $ok { default 0; "~^GET /v1/models(\\?[^#]*)?$" 1; }
    log_format j escape=json '{"time":"$time_iso8601"}';
    upstream offgrid_engine { server unix:/run/offgrid-seal/llamacpp.sock; keepalive 16; }
    server {
        listen 127.0.0.1:8080;
        if ($ok = 0) { return 403; }
        location / { proxy_pass http://offgrid_engine; }
    }
    include extra/*.conf;
}
"""


def test_the_reader_finds_servers_upstreams_and_includes(tmp_path: Path) -> None:
    (tmp_path / "nginx.conf").write_text(CONF)
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "team.conf").write_text(
        "server { listen 0.0.0.0:11443 ssl; location / { proxy_pass http://unix:/x.sock:/v1; }\n"
        "  location /f { fastcgi_pass 127.0.0.1:9000; } location /j { js_content a.b; } }\n"
        "server { location / { proxy_pass http://10.0.0.1:80/; } }\n"
    )
    servers = nginx_conf.servers(nginx_conf.load(str(tmp_path / "nginx.conf"), "daemon off;"))
    assert servers == (
        NginxServer("http", ("127.0.0.1:8080",), ("unix:/run/offgrid-seal/llamacpp.sock",)),
        NginxServer("http", ("0.0.0.0:11443",), ("unix:/x.sock",), ("fastcgi_pass", "js_content")),
        NginxServer("http", ("*:80",), ("10.0.0.1:80",)),
    )


@pytest.mark.parametrize(
    "text", ["http { server { listen 80; }", "http { } }", "a 'open;", "http { ; }", "{ }"]
)
def test_a_broken_configuration_is_refused(tmp_path: Path, text: str) -> None:
    (tmp_path / "nginx.conf").write_text(text)
    with pytest.raises(nginx_conf.ConfigError):
        nginx_conf.load(str(tmp_path / "nginx.conf"))


def test_a_missing_include_or_relative_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "nginx.conf").write_text("http { include missing.conf; }")
    with pytest.raises(nginx_conf.ConfigError, match="cannot read"):
        nginx_conf.load(str(tmp_path / "nginx.conf"))
    with pytest.raises(nginx_conf.ConfigError, match="relative"):
        nginx_conf.load("nginx.conf")


def test_the_master_title_gives_its_config_and_g_directives() -> None:
    assert nginx_conf.command_line(NGINX_TITLE) == ("/etc/offgrid-gateway/nginx.conf",
                                                    "daemon off;")  # fmt: skip
    padded = (" ".join(NGINX_TITLE), "", "", "")  # the title in argv[0]'s space, NUL-padded
    assert nginx_conf.command_line(padded) == nginx_conf.command_line(NGINX_TITLE)
    assert nginx_conf.command_line(("nginx",)) == ("/etc/nginx/nginx.conf", "")
    with pytest.raises(nginx_conf.ConfigError, match="prefix"):
        nginx_conf.command_line(("nginx", "-p", "/srv/"))


def test_list_sockets_and_proc_net_unix_are_parsed() -> None:
    listed = gateway_chain.parse_list_sockets(
        f"{PATH} Stream {SOCKET_UNIT} {PROXY_UNIT}\n"
        "/run/dbus/system_bus_socket Stream dbus.socket dbus.service, other.service\n"
    )
    assert listed[0] == SocketUnitListen(PATH, "Stream", SOCKET_UNIT, (PROXY_UNIT,))
    assert listed[1].activates == ("dbus.service", "other.service")
    table = (
        "Num       RefCount Protocol Flags    Type St Inode Path\n"
        f"0000000000000000: 00000002 00000000 00010000 0001 01 5555 {PATH}\n"
        f"0000000000000000: 00000003 00000000 00000000 0001 03 5556 {PATH}\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 5557 /run/other.sock\n"
    )
    assert gateway_chain.parse_proc_net_unix(table, {PATH}) == [(PATH, 5555)]


def test_og_net_01_names_the_gateway_listeners_and_passes() -> None:
    f = sealed()
    team = sock("0.0.0.0", 11443, pid=WORKER)
    result = engine_listens_on_loopback(dataclasses.replace(f, sockets=(*f.sockets, team)))
    assert result.status == "pass", result.summary
    assert "through its gateway on 127.0.0.1:11434, 0.0.0.0:11443" in result.summary


def test_og_net_01_names_no_gateway_whose_chain_is_broken() -> None:
    f = sealed(_chain(socket_units=()))
    result = engine_listens_on_loopback(f)
    assert "gateway" not in result.summary

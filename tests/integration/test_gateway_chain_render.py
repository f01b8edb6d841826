"""The nginx configuration reader on the configuration the role really renders: it finds
the local and the team listener, each passing only to the sealed engine's unix socket,
which is what OG-NET-02 relates to the engine on the workstation."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.inventory import nginx_conf
from auditor.inventory.interface import NginxServer
from tests.gateway_support import (
    base_variables,
    make_tls,
    new_token,
    render,
    store_entry,
    write_store,
)

pytestmark = [pytest.mark.root, pytest.mark.integration]
SOCKET = "/run/offgrid-seal/llamacpp.sock"


def test_the_rendered_gateway_passes_only_to_the_sealed_socket(tmp_path: Path) -> None:
    cert, key = make_tls(tmp_path)
    token_id, token = new_token()
    store = tmp_path / "tokens.json"
    write_store(store, [store_entry(token_id, "alice", token)])
    variables = {
        **base_variables(tmp_path, f"unix:{SOCKET}"),
        "offgrid_gateway_team_enabled": True,
        "offgrid_gateway_tls_certificate": str(cert),
        "offgrid_gateway_tls_key": str(key),
        "offgrid_gateway_token_store": str(store),
    }
    render(tmp_path, variables)
    conf = tmp_path / "conf" / "nginx.conf"
    servers = nginx_conf.servers(nginx_conf.load(str(conf), "daemon off;"))
    assert servers == (
        NginxServer("http", (variables["offgrid_gateway_local_listen"],), (f"unix:{SOCKET}",)),
        NginxServer("http", (variables["offgrid_gateway_team_listen"],), (f"unix:{SOCKET}",)),
    )

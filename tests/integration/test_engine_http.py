"""The audit's HTTP probes reach an engine on the loopback of its own network namespace.

A real HTTP server listens on 127.0.0.1 inside a namespace of the test's own; nothing listens
on that port in the test's namespace, so only a connection opened inside the engine's
namespace can be answered.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import pytest
import requests

from auditor.inventory import engine_http
from tests.integration.netns import Namespace, network_namespace

pytestmark = pytest.mark.root

PORT = 18734
SERVER = (
    "import http.server,sys\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = self.path.encode()\n"
    "        self.send_response(200); self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers(); self.wfile.write(body)\n"
    "    def log_message(self, *a): pass\n"
    f"s = http.server.HTTPServer(('127.0.0.1', {PORT}), H)\n"
    "print('ready', flush=True)\n"
    "s.serve_forever()\n"
)


@pytest.fixture(scope="module")
def engine_ns() -> Iterator[tuple[Namespace, int]]:
    with network_namespace("og-http-engine") as ns:
        proc = ns.spawn([sys.executable, "-c", SERVER])
        yield ns, proc.pid


def _nothing_listens_here() -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", PORT)) != 0


def test_requests_reach_the_server_inside_its_namespace(engine_ns: tuple[Namespace, int]) -> None:
    _, pid = engine_ns
    assert _nothing_listens_here()
    with engine_http.session_with(engine_http.namespace_opener(pid)) as http:
        first = http.get(f"http://127.0.0.1:{PORT}/api/ps", timeout=5)
        second = http.get(f"http://127.0.0.1:{PORT}/v1/models", timeout=5)
    assert (first.status_code, first.text) == (200, "/api/ps")
    assert second.text == "/v1/models"


def test_a_plain_request_from_here_finds_nothing(engine_ns: tuple[Namespace, int]) -> None:
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{PORT}/", timeout=5)


def test_a_non_loopback_address_is_refused_before_any_connect(
    engine_ns: tuple[Namespace, int],
) -> None:
    _, pid = engine_ns
    with (
        engine_http.session_with(engine_http.namespace_opener(pid)) as http,
        pytest.raises(requests.ConnectionError, match="refusing to reach"),
    ):
        http.get(f"http://198.18.77.1:{PORT}/", timeout=5)


def test_a_gone_process_is_a_connection_error_not_a_crash() -> None:
    with (
        engine_http.session_with(engine_http.namespace_opener(2**22 + 17)) as http,
        pytest.raises(requests.ConnectionError),
    ):
        http.get(f"http://127.0.0.1:{PORT}/", timeout=5)

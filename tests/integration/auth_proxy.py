"""A tiny real authenticating reverse proxy for tests, in front of the real engine.

It admits a request when `Authorization: Bearer <token>` hashes to an active token of the
store, read through the gateway role's own filter (`offgrid_gateway_token_map`) at every
request, so a revocation takes effect at once; it answers 401 without a valid credential,
403 for users in `blocked` and for routes off the allow-list, and streams the engine's
answer through chunk by chunk. It records who called which route, never a body.
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.unit.test_role_filters import _load

FILTER = _load("offgrid_gateway_tokens")
ALLOWED = ("/v1/chat/completions", "/v1/completions", "/v1/models", "/extras/tokenize/count")


@dataclass
class ProxyState:
    store: Path
    upstream: tuple[str, int]
    blocked: set[str] = field(default_factory=set)
    log: list[tuple[str | None, str, int]] = field(default_factory=list)  # user, route, status


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: ProxyState

    def log_message(self, format: str, *args: object) -> None:
        return

    def _user(self) -> str | None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        digest = hashlib.sha256(header.removeprefix("Bearer ").encode()).hexdigest()
        users: dict[str, str] = FILTER.offgrid_gateway_token_map(self.state.store.read_text())
        return users.get(digest)

    def _refuse(self, status: int, user: str | None) -> None:
        body = b'{"error": "refused"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.state.log.append((user, self.path, status))

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        user = self._user()
        if user is None:
            return self._refuse(401, None)
        if user in self.state.blocked or self.path.split("?")[0] not in ALLOWED:
            return self._refuse(403, user)
        upstream = http.client.HTTPConnection(*self.state.upstream, timeout=300)
        try:
            headers = {"Content-Type": self.headers.get("Content-Type", "application/json")}
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.getheader("Content-Type", "text/plain"))
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while chunk := answer.read1(65536):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.state.log.append((user, self.path, answer.status))
        finally:
            upstream.close()
        return None

    do_GET = _handle
    do_POST = _handle


@contextmanager
def running_proxy(state: ProxyState) -> Iterator[str]:
    """The proxy on an ephemeral loopback port; yields its base URL; stopped on exit."""
    handler = type("Handler", (_Handler,), {"state": state})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="auth-proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

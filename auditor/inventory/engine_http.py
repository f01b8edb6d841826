"""HTTP to the running engine on its own loopback, wherever that loopback is.

An engine in the audit's own network namespace is reached at 127.0.0.1:PORT as it always
was. An engine in another namespace (a sealed unit with `PrivateNetwork=`, a container)
listens on the loopback of that namespace: every connection to it is opened inside the
engine's namespace (a short-lived thread that setns()es, `auditor.inventory.netns`), so what
answers the audit's probes is the engine itself, never a proxy or gateway the host puts in
front of it (which may filter routes or rewrite headers). Connections go to loopback only.

    session(engine) -> requests.Session
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.util import parse_url

from auditor.inventory import netns
from auditor.inventory.interface import EngineFacts
from auditor.inventory.sockets import is_loopback

# (host, port, timeout) -> a connected stream socket
Opener = Callable[[str, int, float | None], socket.socket]


class _Connection(HTTPConnection):
    def __init__(self, *args: Any, opener: Opener, **kwargs: Any) -> None:
        self._opener = opener
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        timeout = self.timeout if isinstance(self.timeout, int | float) else None
        return self._opener(self.host, self.port or 80, timeout)


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _Adapter(HTTPAdapter):
    """Every http:// request of the session goes through `opener`."""

    def __init__(self, opener: Opener) -> None:
        super().__init__()
        self._opener = opener
        self._pools: dict[tuple[str, int], _Pool] = {}

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str | None,
        proxies: Mapping[str, str] | None = None,
        cert: tuple[str, str] | str | None = None,
    ) -> HTTPConnectionPool:
        url = parse_url(request.url or "")
        key = (url.host or "", url.port or 80)
        if key not in self._pools:
            self._pools[key] = _Pool(key[0], key[1], opener=self._opener)
        return self._pools[key]

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        super().close()


def namespace_opener(pid: int) -> Opener:
    """Connections opened inside the network namespace of process `pid`, to loopback only."""

    def open_inside(host: str, port: int, timeout: float | None) -> socket.socket:
        if not is_loopback(host.strip("[]")):
            raise OSError(f"refusing to reach {host}:{port} from the engine's namespace")
        address = (host.strip("[]"), port)
        return netns.in_namespace(pid, lambda: socket.create_connection(address, timeout))

    return open_inside


def session_with(opener: Opener) -> requests.Session:
    """A session whose http:// connections `opener` makes; it ignores proxy variables."""
    http = requests.Session()
    http.trust_env = False
    http.mount("http://", _Adapter(opener))
    return http


def session(engine: EngineFacts) -> requests.Session:
    """A session that reaches the engine on its own loopback."""
    if engine.foreign_netns and engine.main is not None:
        return session_with(namespace_opener(engine.main.pid))
    http = requests.Session()
    http.trust_env = False
    return http

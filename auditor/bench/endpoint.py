"""Where the benchmark may send its prompts: loopback only, unless the user says otherwise.

The prompts are source code. offgrid must never be the tool that carries code off the
machine, so a host that resolves to anything outside 127.0.0.0/8 and ::1 is refused
before a single byte is sent.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from auditor.errors import InputError


def split_endpoint(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InputError(f"endpoint is not a valid URL ({exc}): {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"endpoint must be an http(s) URL with a host, got {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise InputError(f"endpoint has a bad port: {url!r}") from exc
    if not 0 < port < 65536:
        raise InputError(f"endpoint has a bad port: {url!r}")
    return parts.hostname, port


def resolved_addresses(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise InputError(f"cannot resolve endpoint host {host!r}: {exc}") from exc
    return sorted({str(info[4][0]) for info in infos})


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def check_endpoint(url: str, allow_remote: bool) -> list[str]:
    """Return the addresses the endpoint resolves to; refuse non-loopback ones."""
    host, port = split_endpoint(url)
    addresses = resolved_addresses(host, port)
    remote = [a for a in addresses if not is_loopback(a)]
    if remote and not allow_remote:
        raise InputError(
            f"refusing to send benchmark prompts to {host} ({', '.join(remote)} is not "
            "loopback); pass --allow-remote to benchmark a remote endpoint on purpose"
        )
    return addresses

"""Which bind addresses count as loopback: the same rule the auditor applies to a socket.

An IPv4 literal in 127.0.0.0/8, ::1 (bracketed or not), an IPv4-mapped loopback address, or
the name localhost. A name that only starts like a loopback address (127.0.0.1.example) is
not loopback: it may resolve anywhere.
"""

from __future__ import annotations

import ipaddress
from typing import Any


def offgrid_loopback(address: object) -> bool:
    text = str(address or "")
    if text == "localhost":
        return True
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        parsed = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped.is_loopback
    return parsed.is_loopback


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"offgrid_loopback": offgrid_loopback}

"""The workstation's only link: a veth pair into a private network namespace.

The guest end sits in a namespace the harness creates; the host end stays in the
controller's namespace with a /30 that routes nowhere else. Addresses are derived from the
workstation's name so concurrent sessions (other helpers, CI jobs) do not collide.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import subprocess
from dataclasses import dataclass

# A /30 per workstation inside 10.213.0.0/16: the addresses exist only on the veth pairs
# the harness creates (host end + the guest's private namespace).
POOL = ipaddress.IPv4Network("10.213.0.0/16")
GUEST_IFNAME = "mgmt0"


@dataclass(frozen=True)
class Link:
    netns: str
    host_veth: str
    host_ip: str
    guest_ip: str
    prefix: int = 30


def plan(name: str) -> Link:
    digest = hashlib.sha256(name.encode()).hexdigest()
    slots = POOL.num_addresses // 4
    start = int(digest[:8], 16) % slots
    used = _routed_networks()
    for step in range(slots):
        subnet = ipaddress.IPv4Network(
            (int(POOL.network_address) + 4 * ((start + step) % slots), 30)
        )
        if not any(subnet.overlaps(net) for net in used):
            hosts = list(subnet.hosts())
            return Link(
                netns=f"offgrid-{name}",
                host_veth=plan_veth_name(name),
                host_ip=str(hosts[0]),
                guest_ip=str(hosts[1]),
            )
    raise RuntimeError(f"no free /30 left in {POOL}")


def plan_veth_name(name: str) -> str:
    # Interface names are limited to 15 characters; the hash keeps names of any length apart.
    return f"og{hashlib.sha256(name.encode()).hexdigest()[:9]}h"


def _routed_networks() -> list[ipaddress.IPv4Network]:
    out = subprocess.run(
        ["ip", "-j", "-4", "route", "show"], check=True, capture_output=True, text=True
    ).stdout
    networks = []
    for route in json.loads(out or "[]"):
        dst = route.get("dst", "")
        if dst and dst != "default":
            networks.append(ipaddress.IPv4Network(dst, strict=False))
    return networks


def create(link: Link) -> None:
    remove(link)
    _ip("netns", "add", link.netns)
    # The peer is created directly inside the namespace, so its fixed name never clashes.
    _ip(
        "link",
        "add",
        link.host_veth,
        "type",
        "veth",
        "peer",
        "name",
        GUEST_IFNAME,
        "netns",
        link.netns,
    )
    _ip("addr", "add", f"{link.host_ip}/{link.prefix}", "dev", link.host_veth)
    _ip("link", "set", link.host_veth, "up")
    _ip("-n", link.netns, "addr", "add", f"{link.guest_ip}/{link.prefix}", "dev", GUEST_IFNAME)
    _ip("-n", link.netns, "link", "set", GUEST_IFNAME, "up")
    _ip("-n", link.netns, "link", "set", "lo", "up")


def remove(link: Link) -> None:
    """Delete the namespace (which takes the veth pair with it) and a stray host end."""
    subprocess.run(["ip", "netns", "delete", link.netns], check=False, capture_output=True)
    subprocess.run(["ip", "link", "delete", link.host_veth], check=False, capture_output=True)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)

"""A minimal NFLOG listener for tests: binds one NFLOG group in the network namespace it
runs in, prints "ready", then "packet" when the kernel hands it one within the timeout,
else "nothing".

    python3 nflog_listener.py GROUP TIMEOUT_S
"""

from __future__ import annotations

import select
import socket
import struct
import sys

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_CONFIG = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NFULA_CFG_CMD, NFULA_CFG_MODE = 1, 2
NFULNL_CFG_CMD_BIND = 1
NFULNL_COPY_PACKET = 2


def _attr(kind: int, data: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(data), kind) + data
    return raw + b"\0" * ((4 - len(raw) % 4) % 4)


def _config(group: int, attrs: bytes) -> bytes:
    payload = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(group)) + attrs
    kind = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
    return struct.pack("=IHHII", 16 + len(payload), kind, NLM_F_REQUEST | NLM_F_ACK, 1, 0) + payload


def main(group: int, timeout_s: float) -> None:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as sock:
        sock.bind((0, 0))
        sock.send(_config(group, _attr(NFULA_CFG_CMD, struct.pack("=B", NFULNL_CFG_CMD_BIND))))
        sock.recv(4096)
        mode = struct.pack("!IB", 0xFFFF, NFULNL_COPY_PACKET)
        sock.send(_config(group, _attr(NFULA_CFG_MODE, mode)))
        sock.recv(4096)
        print("ready", flush=True)
        readable, _, _ = select.select([sock], [], [], timeout_s)
        print("packet" if readable else "nothing", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]))

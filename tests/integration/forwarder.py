"""A TCP port forwarder, as docker-proxy or systemd-socket-proxyd are: listen, connect, relay.

    python3 forwarder.py --listen HOST:PORT --to HOST:PORT [--join-netns PID]

Each accepted connection is relayed to --to in both directions until either side closes.
With --join-netns the forwarder opens its listener first, then moves into the network
namespace of PID (setns(2), as systemd-socket-proxyd does with JoinsNamespaceOf=), so it
listens on the host side and connects inside the namespace. Prints "ready" once it
listens. Standard library only (runs under the system python).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000


def _split(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


def _serve(client: socket.socket, target: tuple[str, int]) -> None:
    try:
        upstream = socket.create_connection(target, timeout=10)
    except OSError:
        client.close()
        return
    threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
    _pump(upstream, client)


def _join(pid: int) -> None:
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")
    os.close(fd)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--to", required=True)
    parser.add_argument("--join-netns", type=int)
    args = parser.parse_args(argv)
    host, port = _split(args.listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, port))
    server.listen(16)
    if args.join_netns:
        _join(args.join_netns)  # the listener stays where it was opened
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    target = _split(args.to)
    while True:
        client, _ = server.accept()
        threading.Thread(target=_serve, args=(client, target), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

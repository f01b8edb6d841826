"""The netlink sock_diag table against sockets this test opens (no root needed)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from auditor.inventory import sockets

Pair = tuple[socket.socket, socket.socket, socket.socket]
REMOTE = "192.0.2.1"  # TEST-NET-1: a connected UDP socket sends nothing


@pytest.fixture
def pair() -> Iterator[Pair]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.create_connection(server.getsockname())
    accepted = server.accept()[0]
    yield server, client, accepted
    for sock in (server, client, accepted):
        sock.close()


def _inode(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


def test_table_lists_a_listener_and_both_ends_with_inode_and_uid(pair: Pair) -> None:
    server, client, accepted = pair
    by_inode = {s.inode: s for s in sockets.table()}
    listener = by_inode[_inode(server)]
    assert (listener.protocol, listener.state, listener.local_address) == (
        "tcp",
        "LISTEN",
        "127.0.0.1",
    )
    assert listener.local_port == server.getsockname()[1]
    assert listener.remote_address is None and listener.pid is None
    assert listener.uid == os.geteuid()
    end = by_inode[_inode(client)]
    assert (end.state, end.remote_address, end.remote_port) == (
        "ESTABLISHED", "127.0.0.1", server.getsockname()[1],
    )  # fmt: skip
    assert _inode(accepted) in by_inode


def test_owners_resolves_only_what_is_asked(pair: Pair) -> None:
    server, client, _ = pair
    assert sockets.owners({_inode(server)}, [os.getpid()]) == {_inode(server): os.getpid()}
    assert sockets.owners({_inode(client)}) == {_inode(client): os.getpid()}
    assert sockets.owners({_inode(client)}, [os.getppid()]) == {}
    table = sockets.resolve(sockets.table(), lambda s: s.inode == _inode(server))
    owned = {s.inode for s in table if s.pid is not None}
    assert _inode(server) in owned and _inode(client) not in owned


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["ipv4", "ipv6"])
def test_leaving_table_keeps_remote_peers_and_drops_loopback(pair: Pair, family: int) -> None:
    _, client, _ = pair
    remote = socket.socket(family, socket.SOCK_DGRAM)
    try:
        remote.connect((REMOTE if family == socket.AF_INET else f"::ffff:{REMOTE}", 53))
    except OSError as exc:
        remote.close()
        pytest.skip(f"no route to {REMOTE} here: {exc}")
    mapped = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    mapped.connect(("::ffff:127.0.0.1", 53))
    with remote, mapped:
        leaving = {s.inode: s for s in sockets.leaving_table()}
        assert _inode(remote) in leaving
        assert leaving[_inode(remote)].remote_address in (REMOTE, f"::ffff:{REMOTE}")
        assert _inode(client) not in leaving
        assert _inode(mapped) not in leaving
        assert all(sockets.leaves_host(s) for s in leaving.values())

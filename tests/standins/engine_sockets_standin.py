"""Stand-in for an engine's *network behaviour* (not an engine) in the audit's socket tests.

Run through a symlink named `ollama` with the argument `serve`, it looks to the auditor
like `ollama serve`; it opens exactly the sockets the test asks for:
  --listen HOST:PORT   TCP listener answering GET /api/version (repeatable)
  --udp HOST:PORT      bound UDP socket (repeatable)
  --connect HOST:PORT  an ESTABLISHED TCP connection held open (repeatable)
  --pulse HOST:PORT    a short-lived connection every 0.4 s (what only --watch can catch)
Prints "ready" once everything is open, then waits to be killed. Standard library only,
so it runs under the system python as an unprivileged uid.
"""

from __future__ import annotations

import argparse
import http.server
import json
import socket
import sys
import threading
import time


def _split(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _version_handler(version: str) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"version": version}).encode()
            self.send_response(200 if self.path == "/api/version" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def _listen(address: str, version: str) -> http.server.ThreadingHTTPServer:
    host, port = _split(address)

    class Server(http.server.ThreadingHTTPServer):
        address_family = _family(host)
        daemon_threads = True

    server = Server((host, port), _version_handler(version))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _pulse(address: str) -> None:
    host, port = _split(address)
    while True:
        try:
            with socket.create_connection((host, port), timeout=2):
                time.sleep(0.2)
        except OSError:
            pass
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", nargs="?", default="serve")
    parser.add_argument("--listen", action="append", default=[])
    parser.add_argument("--udp", action="append", default=[])
    parser.add_argument("--connect", action="append", default=[])
    parser.add_argument("--pulse")
    parser.add_argument("--version", default="0.20.0")
    args = parser.parse_args()
    keep: list[object] = [_listen(a, args.version) for a in args.listen]
    for address in args.udp:
        host, port = _split(address)
        udp = socket.socket(_family(host), socket.SOCK_DGRAM)
        udp.bind((host, port))
        keep.append(udp)
    keep += [socket.create_connection(_split(a), timeout=5) for a in args.connect]
    if args.pulse:
        threading.Thread(target=_pulse, args=(args.pulse,), daemon=True).start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()

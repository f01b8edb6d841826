"""Socket snapshot vs `ss -tanup`, and the real sampling interval of `--watch`, in one run.

A network namespace of the benchmark's own holds 200 processes with 25 TCP sockets each
(a listener and 12 connected loopback pairs: 5 000 sockets). Inside it, alternating run
by run, the benchmark times:
- `ss -tanup` as a whole process (the reference: netlink sock_diag plus every owner);
- the audit's snapshot as `offgrid audit` takes it (netlink dump, owners of the
  engine's process tree and of listeners on the engines' default ports);
- the same dump with every owner (what `ss -tanup` prints), and psutil's
  `net_connections` (the /proc/net parser the audit used before), for context;
- pyroute2's sock_diag dump when pyroute2 is installed (a candidate library).
Goal: the audit's snapshot takes at most 0.5x `ss -tanup` (median). An engine in another
network namespace is read from inside it: the same timings are taken the way the audit
reads a foreign namespace (a thread setns()es into /proc/PID/ns/net, dumps sock_diag and
resolves the engine's owners), against `nsenter --net=/proc/PID/ns/net ss -tanup` and
against parsing /proc/PID/net/{tcp,tcp6,udp,udp6} (what needs no setns); same goal,
0.5x. Then `--watch`'s
sampler runs for 2 s in the same namespace and its real interval between samples is
reported against its 20 ms goal (median, within 0.1 ms of timer slack).

Needs root (it creates and deletes the namespace `offgrid-bench-sockets`).

    .venv/bin/python benchmarks/bench_sockets.py [--runs 15] [--processes 200] [--pairs 12]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import psutil

from auditor.engine_kind import EngineKind
from auditor.inventory import collect, netns, processes, sockdiag, sockets
from auditor.inventory.discovery import Located

NAMESPACE = "offgrid-bench-sockets"
GOAL_RATIO = 0.5
WATCH_GOAL_MS = 20.0
# a sleeping sampler wakes a little after its tick (timer slack, scheduling): the median
# interval may exceed the goal by this much and still be sampling at its interval
WATCH_SLACK_MS = 0.1
ENGINE_PORT = 11434


def _hold(index: int, pairs: int) -> None:
    """Child: a listener and `pairs` connected loopback pairs, held until killed."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(pairs)
    kept = [server]
    for _ in range(pairs):
        client = socket.create_connection(server.getsockname())
        kept += [client, server.accept()[0]]
    if index == 0:  # the "engine": listens on the engine port
        engine = socket.socket()
        engine.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        engine.bind(("127.0.0.1", ENGINE_PORT))
        engine.listen()
        kept.append(engine)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    signal.pause()


@contextlib.contextmanager
def holders(count: int, pairs: int) -> Iterator[list[int]]:
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--hold", str(i), "--pairs", str(pairs)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _pyroute2() -> Callable[[], object] | None:
    try:
        from pyroute2 import DiagSocket  # noqa: PLC0415  (optional: measured when installed)
    except ImportError:
        return None

    def dump() -> object:
        with DiagSocket() as diag:
            diag.bind()
            return [
                diag.get_sock_stats(family=family, protocol=proto, states=0xFFFFFFFF)
                for family in (socket.AF_INET, socket.AF_INET6)
                for proto in (socket.IPPROTO_TCP, socket.IPPROTO_UDP)
            ]

    return dump


def _proc_net(pid: int) -> list[list[str]]:
    """/proc/PID/net/{tcp,tcp6,udp,udp6} split into fields (the no-setns alternative)."""
    rows: list[list[str]] = []
    for name in ("tcp", "tcp6", "udp", "udp6"):
        with open(f"/proc/{pid}/net/{name}", encoding="ascii") as handle:
            rows += [line.split() for line in handle.read().splitlines()[1:]]
    return rows


def _foreign_cases(engine_pid: int) -> dict[str, Callable[[], object]]:
    ss = shutil.which("ss") or "ss"
    nsenter = shutil.which("nsenter") or "nsenter"

    def inside() -> object:
        table = netns.in_namespace(engine_pid, sockdiag.dump)
        return sockets.resolve(table, lambda _: True, [engine_pid])

    return {
        "nsenter ss -tanup": lambda: subprocess.run(
            [nsenter, f"--net=/proc/{engine_pid}/ns/net", ss, "-tanup"],
            capture_output=True,
            check=True,
        ),
        "namespace read (setns + sock_diag + engine owners)": inside,
        "/proc/PID/net parsed (no owners)": lambda: _proc_net(engine_pid),
    }


def _p95(values: list[float]) -> float | None:
    return round(sorted(values)[int(0.95 * len(values))], 2) if values else None


def measure(runs: int, engine_pid: int) -> dict[str, object]:
    main = processes.read_process(engine_pid)
    located = Located(EngineKind.OLLAMA, "pid", main, None)

    def audit_snapshot() -> object:
        socks = collect.read_sockets(root=True)
        return collect._with_engine_owners(socks, located, (main,))

    ss = shutil.which("ss") or "ss"
    cases: dict[str, Callable[[], object]] = {
        "ss -tanup": lambda: subprocess.run([ss, "-tanup"], capture_output=True, check=True),
        "audit snapshot": audit_snapshot,
        "dump + every owner": sockets.snapshot,
        "psutil.net_connections": lambda: psutil.net_connections("inet"),
    }
    if (pyroute2 := _pyroute2()) is not None:
        cases["pyroute2 dump (no owners)"] = pyroute2
    cases["dump (no owners)"] = sockets.table
    cases |= _foreign_cases(engine_pid)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, fn in cases.items():
            times[name].append(_timed(fn))
    medians = {name: round(statistics.median(v), 2) for name, v in times.items()}
    ratio = medians["audit snapshot"] / medians["ss -tanup"]
    foreign = (
        medians["namespace read (setns + sock_diag + engine owners)"] / medians["nsenter ss -tanup"]
    )
    watched = collect.watch(2.0, {sockets.watch_key(s) for s in sockets.table()}, set())
    interval = watched.median_interval_ms()
    return {
        "sockets": len(sockets.table()),
        "median_ms": medians,
        "ratio_audit_snapshot_to_ss": round(ratio, 3),
        "ratio_namespace_read_to_nsenter_ss": round(foreign, 3),
        "goal_ratio": GOAL_RATIO,
        "watch": {
            "seconds": 2.0,
            "samples": watched.samples,
            "median_interval_ms": interval,
            "p95_interval_ms": round(
                sorted(watched.intervals_ms)[int(0.95 * len(watched.intervals_ms))], 2
            )
            if watched.intervals_ms
            else None,
            "goal_ms": WATCH_GOAL_MS,
            "slack_ms": WATCH_SLACK_MS,
        },
        "met": ratio <= GOAL_RATIO
        and foreign <= GOAL_RATIO
        and interval is not None
        and interval <= WATCH_GOAL_MS + WATCH_SLACK_MS,
    }


def inner(args: argparse.Namespace) -> int:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with holders(args.processes, args.pairs) as pids:
        result = measure(args.runs, pids[0])
    result["processes"] = args.processes
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0 if result["met"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--processes", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--hold", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hold is not None:
        _hold(args.hold, args.pairs)
        return 0
    if args.inner:
        return inner(args)
    if os.geteuid() != 0:
        sys.stderr.write("bench_sockets: needs root (creates a network namespace)\n")
        return 2
    subprocess.run(["ip", "netns", "del", NAMESPACE], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "add", NAMESPACE], check=True)
    try:
        done = subprocess.run(
            ["nsenter", f"--net=/run/netns/{NAMESPACE}", sys.executable, __file__, "--inner",
             "--runs", str(args.runs), "--processes", str(args.processes),
             "--pairs", str(args.pairs)], check=False,
        )  # fmt: skip
        return done.returncode
    finally:
        subprocess.run(["ip", "netns", "del", NAMESPACE], check=False)


if __name__ == "__main__":
    sys.exit(main())

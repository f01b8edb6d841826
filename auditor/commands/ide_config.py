"""`offgrid ide-config`: a developer's Continue and VS Code configuration, telemetry off.

    offgrid ide-config --user alice --url https://gw.example:8443 --token-file alice.token \\
        --out ./alice [--lock offgrid.lock.json] [--bench-report bench.json …] [--store S]

Writes `<out>/.continue/config.yaml` (0600: it holds the credential) and
`<out>/.config/Code/User/settings.json`, laid out as in a home directory. The models for
autocomplete and for chat/edit follow the measured crossover when benchmark results are
given, else the lock's pinned models; the output says which and why. The credential is
read from a file or standard input, never from the command line, and never printed.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path

from auditor.bench.endpoint import split_endpoint
from auditor.console import Console
from auditor.errors import InputError, UsageError
from auditor.exitcodes import ExitCode
from auditor.gateway import credential
from auditor.gateway.tokens import check_token, check_user, load_store, now_utc, token_sha256
from auditor.ideconfig.files import Target, write_all
from auditor.ideconfig.models import ModelPlan, load_measured, lock_plan, measured_plan
from auditor.models import lockfile

NAME = "ide-config"
HELP = "Write a developer's Continue and VS Code configuration (gateway, models, telemetry off)."


def register(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--user", required=True, help="the developer (as named in the token store)")
    add("--url", required=True, help="gateway base URL, e.g. https://gw.example:8443")
    add("--api", choices=("ollama", "openai"), default="ollama", help="API the IDE speaks")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--token-file", type=Path, help="file holding the developer's token")
    source.add_argument("--token-stdin", action="store_true", help="read the token from stdin")
    add("--out", type=Path, required=True, help="directory laid out as a home directory")
    add("--lock", type=Path, help="offgrid lock file: the pinned models")
    add(
        "--bench-report",
        type=Path,
        action="append",
        default=[],
        help="offgrid bench results with a crossover (repeat for several models)",
    )
    add("--store", type=Path, help="token store: check the token is an active one of --user")


def _loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(url: str) -> None:
    host, _port = split_endpoint(url)
    if url.startswith("http://") and not _loopback_host(host):
        raise InputError(
            f"--url {url}: the credential would cross the network in clear text; "
            "use the gateway's https:// team listener"
        )


def _token(args: argparse.Namespace) -> str:
    if args.token_stdin:
        raw = credential.read_stream(sys.stdin.buffer)
        return check_token(raw, "standard input")
    return check_token(credential.read_file(args.token_file, "token file"), "token file")


def _check_store(store_path: Path, user: str, token: str) -> None:
    digest = token_sha256(token)
    record = next((t for t in load_store(store_path).tokens if t.sha256 == digest), None)
    if record is None or record.user != user:
        raise InputError(f"the token is not one issued to {user} in {store_path}")
    if not record.active(now_utc()):
        raise InputError(f"token {record.id} of {user} is {record.state(now_utc())}")


def _plan(args: argparse.Namespace) -> ModelPlan:
    lock = lockfile.load(args.lock) if args.lock else None
    if args.bench_report:
        return measured_plan(load_measured(args.bench_report), lock, args.api)
    if lock is None:
        raise UsageError("ide-config needs --lock (the pinned models) or --bench-report")
    return lock_plan(lock, args.api, str(args.lock))


def run(args: argparse.Namespace, console: Console) -> int:
    check_user(args.user)
    _check_url(args.url)
    token = _token(args)
    if args.store:
        _check_store(args.store, args.user, token)
    plan = _plan(args)
    written = write_all(args.out, Target(args.user, args.url, args.api), plan, token)
    lines = [f"models from the {plan.source}:"]
    lines += [
        f"  {choice.role}: {choice.model} — {choice.basis}"
        for choice in (plan.autocomplete, plan.chat)
    ]
    for item in written:
        secret = ", holds the credential" if item.holds_credential else ""
        lines.append(f"wrote {item.path} (mode {item.mode:04o}{secret})")
    console.out("\n".join(lines))
    return ExitCode.OK

"""`offgrid gateway token issue|revoke|list`: developer credentials for the gateway.

`issue` prints the new token on stdout and nothing else (capture it: it is never shown
again; the store keeps only its SHA-256). `revoke` marks tokens revoked (the gateway
refuses them after the next play of the gateway role). `list` shows ids, users, dates and
states, never a hash. Bad input, an unknown token, a malformed store or one that is not a
regular file: one-line error, exit 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from auditor.console import Console
from auditor.errors import UsageError
from auditor.exitcodes import ExitCode
from auditor.fsutil import dumps_json
from auditor.gateway.tokens import (
    TokenRecord,
    format_time,
    issue,
    load_store,
    now_utc,
    revoke,
)

NAME = "gateway"
HELP = "Manage the gateway's per-developer credentials (offgrid gateway token …)."
LIST_SCHEMA = "offgrid-gateway-token-list/1"


def register(parser: argparse.ArgumentParser) -> None:
    groups = parser.add_subparsers(dest="gateway_group", metavar="GROUP", required=True)
    token = groups.add_parser("token", help="issue, revoke or list bearer tokens")
    actions = token.add_subparsers(dest="token_action", metavar="ACTION", required=True)
    issue_p = actions.add_parser("issue", help="issue a token (printed once on stdout)")
    issue_p.add_argument("--store", type=Path, required=True, help="token store (JSON, 0600)")
    issue_p.add_argument("--user", required=True, help="developer name, e.g. alice")
    issue_p.add_argument("--expires-days", type=int, help="days until it expires (default never)")
    issue_p.set_defaults(token_handler=_issue)
    revoke_p = actions.add_parser("revoke", help="revoke a token by id, or all of a user's")
    revoke_p.add_argument("--store", type=Path, required=True)
    which = revoke_p.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", dest="token_id", help="the token's id (12 hex digits)")
    which.add_argument("--user", help="revoke every unrevoked token of this user")
    revoke_p.set_defaults(token_handler=_revoke)
    list_p = actions.add_parser("list", help="list tokens (ids, users, dates, state)")
    list_p.add_argument("--store", type=Path, required=True)
    list_p.add_argument("--json", action="store_true", help="JSON on stdout")
    list_p.set_defaults(token_handler=_list)


def _issue(args: argparse.Namespace, console: Console) -> int:
    issued = issue(args.store, args.user, args.expires_days)
    console.out(issued.token)
    record = issued.record
    expiry = f", expires {format_time(record.expires_at)}" if record.expires_at else ""
    console.info(
        f"issued token {record.id} for {record.user}{expiry}; it is shown only this once "
        f"(store {args.store} keeps its sha256); run the gateway role to roll it out"
    )
    return ExitCode.OK


def _revoke(args: argparse.Namespace, console: Console) -> int:
    changed = revoke(args.store, token_id=args.token_id, user=args.user)
    if not changed:
        what = f"token {args.token_id}" if args.token_id else f"every token of {args.user}"
        console.info(f"{what} was already revoked; nothing changed")
        return ExitCode.OK
    for record in changed:
        console.info(f"revoked token {record.id} of {record.user}")
    console.info("the gateway refuses it after the next run of the gateway role")
    return ExitCode.OK


def _row(record: TokenRecord, now_state: str) -> dict[str, str | None]:
    return {
        "id": record.id,
        "user": record.user,
        "state": now_state,
        "issued_at": format_time(record.issued_at),
        "expires_at": format_time(record.expires_at) if record.expires_at else None,
        "revoked_at": format_time(record.revoked_at) if record.revoked_at else None,
    }


def _list(args: argparse.Namespace, console: Console) -> int:
    store = load_store(args.store)
    now = now_utc()
    rows = [_row(r, r.state(now)) for r in store.tokens]
    if args.json:
        console.out(dumps_json({"schema": LIST_SCHEMA, "tokens": rows}))
        return ExitCode.OK
    lines = [f"{'ID':<12}  {'USER':<32}  {'STATE':<7}  {'ISSUED':<20}  {'EXPIRES':<20}  REVOKED"]
    lines += [
        f"{r['id']:<12}  {r['user']:<32}  {r['state']:<7}  {r['issued_at']:<20}  "
        f"{r['expires_at'] or '-':<20}  {r['revoked_at'] or '-'}"
        for r in rows
    ]
    console.out("\n".join(lines))
    return ExitCode.OK


def run(args: argparse.Namespace, console: Console) -> int:
    handler = getattr(args, "token_handler", None)
    if handler is None:
        raise UsageError("usage: offgrid gateway token issue|revoke|list …")
    return int(handler(args, console))

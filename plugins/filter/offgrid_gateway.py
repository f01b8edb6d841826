"""Read the gateway's token store (`offgrid gateway token issue`) for the offgrid_gateway role.

The store holds one entry per issued token: its id, the developer, the sha256 of the whole
token string and its dates; never the token. Only active tokens (not revoked, not expired at
the time of the play) reach the workstation, as sha256 -> user and expiry. A store in another
schema, with unknown keys or malformed values, is refused: a misread store must never grant.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from ansible.errors import AnsibleFilterError

SCHEMA = "offgrid-gateway-tokens/1"
_TOKEN_KEYS = {"id", "user", "sha256", "issued_at", "expires_at", "revoked_at"}
_ID = re.compile(r"^[0-9a-f]{12}$")
_USER = re.compile(r"^[a-z][a-z0-9._-]{0,31}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _time(value: object, what: str, optional: bool) -> datetime | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not _TIME.match(value):
        raise AnsibleFilterError(f"token store: {what} is not an RFC 3339 UTC time: {value!r}")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _entry(raw: object, index: int) -> dict[str, Any]:
    if not isinstance(raw, dict) or set(raw) != _TOKEN_KEYS:
        keys = ", ".join(sorted(_TOKEN_KEYS))
        raise AnsibleFilterError(f"token store: token {index} must have exactly the keys {keys}")
    for key, pattern in (("id", _ID), ("user", _USER), ("sha256", _SHA256)):
        if not isinstance(raw[key], str) or not pattern.match(raw[key]):
            raise AnsibleFilterError(f"token store: token {index} has a malformed {key}")
    _time(raw["issued_at"], f"token {raw['id']} issued_at", False)
    return {
        "id": raw["id"],
        "user": raw["user"],
        "sha256": raw["sha256"],
        "expires_at": _time(raw["expires_at"], f"token {raw['id']} expires_at", True),
        "revoked_at": _time(raw["revoked_at"], f"token {raw['id']} revoked_at", True),
    }


def offgrid_gateway_tokens(text: object, now: object = None) -> list[dict[str, Any]]:
    """The store's active tokens as [{"sha256", "user", "expires"}] (expires: epoch seconds,
    0 for never), sorted by id. `now` (RFC 3339 or a datetime) defaults to the current time."""
    try:
        store = json.loads(str(text))
    except ValueError as error:
        raise AnsibleFilterError(f"token store: not valid JSON ({error})") from error
    if not isinstance(store, dict) or set(store) != {"schema", "tokens"}:
        raise AnsibleFilterError("token store: expected exactly the keys schema and tokens")
    if store["schema"] != SCHEMA or not isinstance(store["tokens"], list):
        raise AnsibleFilterError(f"token store: schema {store.get('schema')!r}, expected {SCHEMA}")
    moment = _now(now)
    entries = [_entry(raw, index) for index, raw in enumerate(store["tokens"])]
    ids = [entry["id"] for entry in entries]
    hashes = [entry["sha256"] for entry in entries]
    if len(set(ids)) != len(ids) or len(set(hashes)) != len(hashes):
        raise AnsibleFilterError("token store: duplicate token id or hash")
    return [
        {
            "sha256": entry["sha256"],
            "user": entry["user"],
            "expires": int(entry["expires_at"].timestamp()) if entry["expires_at"] else 0,
        }
        for entry in sorted(entries, key=lambda e: e["id"])
        if _active(entry, moment)
    ]


def _active(entry: dict[str, Any], moment: datetime) -> bool:
    return entry["revoked_at"] is None and (
        entry["expires_at"] is None or entry["expires_at"] > moment
    )


def _now(now: object) -> datetime:
    if now is None or now == "":
        return datetime.now(UTC)
    if isinstance(now, datetime):
        return now if now.tzinfo else now.replace(tzinfo=UTC)
    moment = _time(str(now), "now", False)
    assert moment is not None
    return moment


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"offgrid_gateway_tokens": offgrid_gateway_tokens}

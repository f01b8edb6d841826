"""The gateway role's view of the token store: only the active tokens, sha256 → user.

The store is parsed and validated by offgrid's own reader (auditor.gateway.tokens), so the
role and `offgrid gateway token` can never disagree about what a valid store is: an unknown
key, a wrong schema or a malformed entry fails the play instead of being skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ansible.errors import AnsibleFilterError

from auditor.errors import InputError
from auditor.gateway.tokens import active_by_sha256, active_entries, parse_store


def _now(now: str | None) -> datetime | None:
    if not now:
        return None
    try:
        return datetime.fromisoformat(now.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError as error:
        raise AnsibleFilterError(f"offgrid_gateway_tokens: bad time {now!r}") from error


def offgrid_gateway_tokens(
    text: str, now: str | None = None, source: str = "token store"
) -> list[dict[str, Any]]:
    """The active tokens: [{id, user, sha256, expires_at}], sorted by id."""
    try:
        return list(active_entries(parse_store(str(text), source), _now(now)))
    except InputError as error:
        raise AnsibleFilterError(str(error)) from error


def offgrid_gateway_token_map(
    text: str, now: str | None = None, source: str = "token store"
) -> dict[str, str]:
    """The active tokens as {sha256: user}."""
    try:
        return active_by_sha256(parse_store(str(text), source), _now(now))
    except InputError as error:
        raise AnsibleFilterError(str(error)) from error


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "offgrid_gateway_tokens": offgrid_gateway_tokens,
            "offgrid_gateway_token_map": offgrid_gateway_token_map,
        }

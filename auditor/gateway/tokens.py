"""Per-developer gateway credentials: the token store, its strict reader and its writer.

A token is `ogk_<id>_<secret>`: `id` is 12 lowercase hex digits that name it in the store,
the log and `revoke`; `secret` is 32 random bytes as URL-safe base64 without padding. The
store keeps only the SHA-256 of the whole token string, never the token:

    {"schema": "offgrid-gateway-tokens/1",
     "tokens": [{"id", "user", "sha256", "issued_at", "expires_at", "revoked_at"}]}

Tokens are sorted by id; times are RFC 3339 UTC with a `Z`; `expires_at` and `revoked_at`
are null or a time. The reader refuses anything else (an unknown key, a wrong schema, a
duplicate id or hash, a store that is not a regular file or that others may write): a
store that would be read loosely could hand the gateway a credential nobody issued.
Changes are read-modify-write under an exclusive lock on the store's directory and land
with one atomic rename (auditor.fsutil), so a store is never half-written.

A token is active while it is not revoked and not expired; `active_by_sha256` is what the
gateway role renders (sha256 → user) and `active_entries` its JSON-ready form for the
role's filter plugin.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import os
import re
import secrets
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from auditor import safeio
from auditor.errors import InputError
from auditor.fsutil import atomic_write_text, dumps_json

SCHEMA = "offgrid-gateway-tokens/1"
STORE_LIMIT = 4 * 1024 * 1024
MAX_EXPIRES_DAYS = 3650
USER = re.compile(r"\A[a-z][a-z0-9._-]{0,31}\Z")
TOKEN_ID = re.compile(r"\A[0-9a-f]{12}\Z")
SHA256 = re.compile(r"\A[0-9a-f]{64}\Z")
TOKEN = re.compile(r"\Aogk_(?P<id>[0-9a-f]{12})_[A-Za-z0-9_-]{43}\Z")
_TIME = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z\Z")
_RECORD_KEYS = ("id", "user", "sha256", "issued_at", "expires_at", "revoked_at")


@dataclass(frozen=True)
class TokenRecord:
    """One issued credential as the store holds it (its hash, never the token)."""

    id: str
    user: str
    sha256: str
    issued_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def state(self, now: datetime) -> str:
        """active, revoked or expired."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def active(self, now: datetime) -> bool:
        return self.state(now) == "active"


@dataclass(frozen=True)
class TokenStore:
    tokens: tuple[TokenRecord, ...] = ()

    def by_id(self, token_id: str) -> TokenRecord | None:
        return next((t for t in self.tokens if t.id == token_id), None)


@dataclass(frozen=True)
class IssuedToken:
    """A new credential: the token string exists only here and on the issuer's stdout."""

    record: TokenRecord
    token: str = field(repr=False)


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def format_time(value: datetime) -> str:
    text = value.astimezone(UTC).isoformat(timespec="seconds")
    return text.removesuffix("+00:00") + "Z"


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def check_user(name: str) -> str:
    if not USER.match(name):
        raise InputError(
            f"user name {name[:40]!r} is not allowed: 1-32 characters, a lowercase letter "
            "first, then lowercase letters, digits, '.', '_' or '-'"
        )
    return name


def check_token(text: str, source: str) -> str:
    """A token string as read from a file or stdin (one trailing newline allowed)."""
    token = text.removesuffix("\n").removesuffix("\r")
    if not TOKEN.match(token):
        raise InputError(f"{source}: not an offgrid gateway token (ogk_<id>_<secret>)")
    return token


# ---- reading --------------------------------------------------------------------------------


def _time(value: object, where: str, source: str, *, nullable: bool) -> datetime | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not _TIME.match(value):
        raise InputError(f"{source}: {where}: expected an RFC 3339 UTC time ending in Z")
    try:
        return datetime.fromisoformat(value.removesuffix("Z") + "+00:00")
    except ValueError:
        raise InputError(f"{source}: {where}: not a valid time: {value!r}") from None


def _string(
    raw: Mapping[str, Any], key: str, pattern: re.Pattern[str], where: str, src: str
) -> str:
    value = raw[key]
    if not isinstance(value, str) or not pattern.match(value):
        raise InputError(f"{src}: {where}.{key}: malformed value")
    return value


def _record(raw: object, where: str, source: str) -> TokenRecord:
    table = safeio.table(raw, where, source)
    keys = set(table)
    if keys != set(_RECORD_KEYS):
        unknown, missing = sorted(keys - set(_RECORD_KEYS)), sorted(set(_RECORD_KEYS) - keys)
        what = f"unknown key {unknown[0]!r}" if unknown else f"missing key {missing[0]!r}"
        raise InputError(f"{source}: {where}: {what}")
    issued = _time(table["issued_at"], f"{where}.issued_at", source, nullable=False)
    assert issued is not None
    return TokenRecord(
        id=_string(table, "id", TOKEN_ID, where, source),
        user=_string(table, "user", USER, where, source),
        sha256=_string(table, "sha256", SHA256, where, source),
        issued_at=issued,
        expires_at=_time(table["expires_at"], f"{where}.expires_at", source, nullable=True),
        revoked_at=_time(table["revoked_at"], f"{where}.revoked_at", source, nullable=True),
    )


def _check_unique(records: list[TokenRecord], source: str) -> None:
    ids = [r.id for r in records]
    if ids != sorted(ids) or len(set(ids)) != len(ids):
        raise InputError(f"{source}: tokens must be sorted by id, each id once")
    if len({r.sha256 for r in records}) != len(records):
        raise InputError(f"{source}: two tokens share one sha256")


def parse_store(data: bytes | str, source: str = "token store") -> TokenStore:
    """The store in `data`, validated completely; anything else is an InputError."""
    top = safeio.table(safeio.parse_json(data, source), "top level", source)
    if set(top) != {"schema", "tokens"}:
        extra = sorted(set(top) - {"schema", "tokens"})
        what = f"unknown key {extra[0]!r}" if extra else "needs exactly 'schema' and 'tokens'"
        raise InputError(f"{source}: {what}")
    if top["schema"] != SCHEMA:
        raise InputError(f"{source}: schema {str(top['schema'])[:60]!r}, expected {SCHEMA!r}")
    items = safeio.array(top["tokens"], "tokens", source)
    records = [_record(item, f"tokens[{i}]", source) for i, item in enumerate(items)]
    _check_unique(records, source)
    return TokenStore(tuple(records))


def _check_store_file(path: Path) -> bool:
    """Whether a store exists at `path`; refuse one that is not a regular file we control."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise safeio.describe_oserror(path, exc) from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"token store {path}: is {safeio.kind_of(st.st_mode)}, not a regular file")
    if st.st_mode & 0o022 or st.st_uid != os.geteuid():
        raise InputError(f"token store {path}: writable by others or not owned by this user")
    return True


def load_store(path: Path, *, missing_ok: bool = False) -> TokenStore:
    """The store at `path` (an empty one when it is missing and `missing_ok`)."""
    if not _check_store_file(path):
        if missing_ok:
            return TokenStore()
        raise InputError(f"token store {path}: no such file")
    data = safeio.read_bytes(path, STORE_LIMIT, follow=False, what="token store")
    return parse_store(data, f"token store {path}")


# ---- writing --------------------------------------------------------------------------------


def _record_json(record: TokenRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "user": record.user,
        "sha256": record.sha256,
        "issued_at": format_time(record.issued_at),
        "expires_at": format_time(record.expires_at) if record.expires_at else None,
        "revoked_at": format_time(record.revoked_at) if record.revoked_at else None,
    }


def store_json(store: TokenStore) -> str:
    tokens = [_record_json(r) for r in sorted(store.tokens, key=lambda r: r.id)]
    return dumps_json({"schema": SCHEMA, "tokens": tokens}) + "\n"


def save_store(path: Path, store: TokenStore) -> None:
    atomic_write_text(path, store_json(store), mode=0o600)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the store's directory (no lock file is created)."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"token store directory {directory}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def new_token(user: str, now: datetime, expires_days: int | None, taken: set[str]) -> IssuedToken:
    check_user(user)
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        raise InputError(f"--expires-days must be from 1 to {MAX_EXPIRES_DAYS}, not {expires_days}")
    token_id = secrets.token_hex(6)
    while token_id in taken:
        token_id = secrets.token_hex(6)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")
    token = f"ogk_{token_id}_{secret}"
    expires = now + timedelta(days=expires_days) if expires_days is not None else None
    record = TokenRecord(token_id, user, token_sha256(token), now, expires, None)
    return IssuedToken(record, token)


def issue(path: Path, user: str, expires_days: int | None = None) -> IssuedToken:
    """A new token for `user`, recorded (as its hash) in the store, created if absent."""
    check_user(user)
    with locked(path):
        store = load_store(path, missing_ok=True)
        issued = new_token(user, now_utc(), expires_days, {t.id for t in store.tokens})
        save_store(path, TokenStore((*store.tokens, issued.record)))
    return issued


def _targets(store: TokenStore, token_id: str | None, user: str | None) -> list[TokenRecord]:
    if token_id is not None:
        if not TOKEN_ID.match(token_id):
            raise InputError(f"--id {token_id[:40]!r} is not a token id (12 lowercase hex)")
        record = store.by_id(token_id)
        if record is None:
            raise InputError(f"no token with id {token_id} in the store")
        return [record]
    check_user(user or "")
    found = [t for t in store.tokens if t.user == user]
    if not found:
        raise InputError(f"no token for user {user} in the store")
    return [t for t in found if t.revoked_at is None]


def revoke(
    path: Path, *, token_id: str | None = None, user: str | None = None
) -> list[TokenRecord]:
    """Mark the token (or every unrevoked token of the user) revoked; the records changed."""
    if (token_id is None) == (user is None):
        raise InputError("revoke needs exactly one of --id or --user")
    with locked(path):
        store = load_store(path)
        now = now_utc()
        pending = [t for t in _targets(store, token_id, user) if t.revoked_at is None]
        changed = [replace(t, revoked_at=now) for t in pending]
        if changed:
            by_id = {t.id: t for t in changed}
            save_store(path, TokenStore(tuple(by_id.get(t.id, t) for t in store.tokens)))
    return changed


# ---- what the gateway serves ------------------------------------------------------------------


def active_by_sha256(store: TokenStore, now: datetime | None = None) -> dict[str, str]:
    """sha256 of each active token → its user: everything the gateway needs to admit one."""
    when = now or now_utc()
    return {t.sha256: t.user for t in store.tokens if t.active(when)}


def active_entries(store: TokenStore, now: datetime | None = None) -> list[dict[str, str | None]]:
    """The active tokens as plain data for a template: id, user, sha256, expires_at."""
    when = now or now_utc()
    return [
        {
            "id": t.id,
            "user": t.user,
            "sha256": t.sha256,
            "expires_at": format_time(t.expires_at) if t.expires_at else None,
        }
        for t in store.tokens
        if t.active(when)
    ]


def matches(record: TokenRecord, token: str) -> bool:
    """Whether `token` is the one `record` was issued for (constant-time comparison)."""
    return hmac.compare_digest(record.sha256, token_sha256(token))

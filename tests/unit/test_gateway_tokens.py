"""`offgrid gateway token`: the token is printed once and stored only as its hash, hostile
stores are refused with one line and exit 2, the gateway role's filter renders only active
tokens, and neither kill -9 nor a full disk ever leaves a half-written store."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import signal
import stat
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.cli import main
from auditor.console import Console
from auditor.errors import InputError
from auditor.gateway import tokens
from auditor.gateway.tokens import SCHEMA, TOKEN, load_store, parse_store, store_json
from tests.unit.test_hostile_outputs import _in_namespace, _results, needs_namespace
from tests.unit.test_role_filters import _load

FILTER = _load("offgrid_gateway_tokens")
KILLS = 40


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, Console(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def _one_line_error(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("offgrid: error:") and "Traceback" not in err


def _issue(store: Path, user: str, *extra: str) -> str:
    code, out, err = _run(
        ["gateway", "token", "issue", "--store", str(store), "--user", user, *extra]
    )
    assert code == 0, err
    return out


def _record(token_id: str = "0123456789ab", **changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "id": token_id,
        "user": "alice",
        "sha256": hashlib.sha256(token_id.encode()).hexdigest(),
        "issued_at": "2026-12-01T10:00:00Z",
        "expires_at": None,
        "revoked_at": None,
    }
    record.update(changes)
    return record


def _store_text(*records: dict[str, object], **top: object) -> str:
    return json.dumps({"schema": SCHEMA, "tokens": list(records), **top})


def test_issue_prints_the_token_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    store = tmp_path / "tokens.json"
    out, err = io.StringIO(), io.StringIO()
    argv = ["gateway", "token", "issue", "--store", str(store), "--user", "alice"]
    assert main([*argv, "--expires-days", "30"], Console(stdout=out, stderr=err)) == 0
    token = out.getvalue().removesuffix("\n")
    assert out.getvalue().count("\n") == 1 and TOKEN.match(token), out.getvalue()
    assert len(token.split("_", 2)[2]) == 43
    assert token not in err.getvalue() and token not in store.read_text()
    assert stat.S_IMODE(os.lstat(store).st_mode) == 0o600
    (record,) = load_store(store).tokens
    assert record.sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(f"ogk_{record.id}_") and record.user == "alice"
    assert record.expires_at is not None
    assert timedelta(days=29) < record.expires_at - record.issued_at <= timedelta(days=30)
    assert store.read_text() == store_json(load_store(store))  # the canonical form, sorted
    second = _issue(store, "bob").strip()
    assert second != token and len(load_store(store).tokens) == 2
    code, listed, _ = _run(["gateway", "token", "list", "--store", str(store), "--json"])
    assert code == 0 and {t["state"] for t in json.loads(listed)["tokens"]} == {"active"}
    assert "sha256" not in listed and token not in listed and second not in listed


def test_revoke_by_id_and_by_user_and_the_filter_renders_only_active_tokens(
    tmp_path: Path,
) -> None:
    store = tmp_path / "tokens.json"
    alice = [_issue(store, "alice").strip() for _ in range(2)]
    bob = _issue(store, "bob").strip()
    carol = _issue(store, "carol", "--expires-days", "1").strip()
    assert len(FILTER.offgrid_gateway_tokens(store.read_text())) == 4
    bob_id = bob.split("_")[1]
    assert _run(["gateway", "token", "revoke", "--store", str(store), "--id", bob_id])[0] == 0
    code, _, err = _run(["gateway", "token", "revoke", "--store", str(store), "--id", bob_id])
    assert code == 0 and "already revoked" in err
    assert _run(["gateway", "token", "revoke", "--store", str(store), "--user", "alice"])[0] == 0
    rendered = FILTER.offgrid_gateway_token_map(store.read_text())
    assert rendered == {hashlib.sha256(carol.encode()).hexdigest(): "carol"}
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    assert FILTER.offgrid_gateway_tokens(store.read_text(), later) == []  # carol has expired
    states = {r.user: r.state(datetime.now(UTC)) for r in load_store(store).tokens}
    assert states == {"alice": "revoked", "bob": "revoked", "carol": "active"}
    assert all(tokens.TOKEN.match(t) for t in (*alice, bob))
    for argv in (
        ["revoke", "--store", str(store), "--id", "ffffffffffff"],
        ["revoke", "--store", str(store), "--id", "../x"],
        ["revoke", "--store", str(store), "--user", "nobody"],
        ["revoke", "--store", str(tmp_path / "missing.json"), "--user", "alice"],
        ["issue", "--store", str(store), "--user", "Alice"],
        ["issue", "--store", str(store), "--user", "a" * 33],
        ["issue", "--store", str(store), "--user", "alice", "--expires-days", "0"],
        ["issue", "--store", str(tmp_path / "nodir" / "t.json"), "--user", "alice"],
        ["list", "--store", str(tmp_path / "missing.json")],
    ):
        code, out, err = _run(["gateway", "token", *argv])
        assert code == 2 and out == "" and _one_line_error(err), (argv, err)


HOSTILE_STORES = {
    "unknown top-level key": _store_text(_record(), extra=1),
    "unknown record key": _store_text(_record(note="x")),
    "missing record key": _store_text({k: v for k, v in _record().items() if k != "revoked_at"}),
    "wrong schema": json.dumps({"schema": "offgrid-gateway-tokens/2", "tokens": []}),
    "tokens not a list": json.dumps({"schema": SCHEMA, "tokens": {}}),
    "unsorted": _store_text(_record("bbbbbbbbbbbb"), _record("aaaaaaaaaaaa")),
    "duplicate id": _store_text(_record(), _record(sha256="f" * 64)),
    "shared hash": _store_text(_record("aaaaaaaaaaaa", sha256="a" * 64), _record(sha256="a" * 64)),
    "uppercase hash": _store_text(_record(sha256="A" * 64)),
    "bad user": _store_text(_record(user="root;drop")),
    "offset time": _store_text(_record(issued_at="2026-12-01T10:00:00+02:00")),
    "impossible time": _store_text(_record(expires_at="2026-13-45T10:00:00Z")),
    "number for a time": _store_text(_record(revoked_at=1)),
    "not JSON": "{",
    "top level a list": "[]",
    "NaN": _store_text(_record()).replace('"expires_at": null', '"expires_at": NaN'),
    "not UTF-8": '{"schema": "\xff"}',
}


@pytest.mark.parametrize("case", sorted(HOSTILE_STORES))
def test_hostile_stores_are_one_line_exit_2_and_fail_the_play(tmp_path: Path, case: str) -> None:
    store = tmp_path / "tokens.json"
    store.write_bytes(HOSTILE_STORES[case].encode("latin-1"))
    store.chmod(0o600)
    before = store.read_bytes()
    for argv in (["list"], ["issue", "--user", "alice"], ["revoke", "--user", "alice"]):
        code, out, err = _run(["gateway", "token", argv[0], "--store", str(store), *argv[1:]])
        assert code == 2 and out == "" and _one_line_error(err), (case, argv, err)
    assert store.read_bytes() == before  # a store that cannot be read is never rewritten
    with pytest.raises(AnsibleFilterError):
        FILTER.offgrid_gateway_tokens(before.decode("latin-1"))


def test_a_store_that_is_not_a_regular_file_or_is_writable_by_others_is_refused(
    tmp_path: Path,
) -> None:
    good = tmp_path / "good.json"
    _issue(good, "alice")
    fifo, directory, link, shared = (tmp_path / n for n in ("fifo", "dir", "link", "shared"))
    os.mkfifo(fifo)
    directory.mkdir()
    link.symlink_to(good)
    shared.write_bytes(good.read_bytes())
    shared.chmod(0o666)
    for path in (fifo, directory, link, shared):
        for action in (["list"], ["issue", "--user", "bob"]):
            code, _, err = _run(["gateway", "token", action[0], "--store", str(path), *action[1:]])
            assert code == 2 and _one_line_error(err), (path, action, err)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink()
    assert len(load_store(good).tokens) == 1


_json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=70)
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)


def _mutations() -> st.SearchStrategy[Any]:
    """A valid store with one field replaced, dropped or added, or a random document."""
    keys = [*tokens._RECORD_KEYS, "schema", "tokens", "extra"]

    def mutate(args: tuple[str, Any, bool]) -> Any:
        key, value, drop = args
        doc: dict[str, Any] = json.loads(_store_text(_record(), _record("fedcba987654")))
        target = doc if key in ("schema", "tokens", "extra") else doc["tokens"][1]
        if drop:
            target.pop(key, None)
        else:
            target[key] = value
        return doc

    return st.tuples(st.sampled_from(keys), _json, st.booleans()).map(mutate) | _json


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_any_store_is_either_valid_and_round_trips_or_refused_as_input(doc: Any) -> None:
    text = json.dumps(doc)
    try:
        store = parse_store(text)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert parse_store(store_json(store)) == store  # what is accepted is what is written back
    for record in store.tokens:
        assert tokens.TOKEN_ID.match(record.id) and tokens.USER.match(record.user)
        assert record.issued_at.tzinfo is not None


# ---- crashes and full disks -------------------------------------------------------------------


def _issuer(store: Path, write_fd: int) -> None:  # pragma: no cover - runs in a forked child
    try:
        while True:
            issued = tokens.issue(store, "alice")
            os.write(write_fd, f"{issued.record.id}\n".encode())
    finally:
        os._exit(0)


def _kill_mid_issue(store: Path, rng: random.Random) -> set[str]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        _issuer(store, write_fd)
    os.close(write_fd)
    time.sleep(rng.uniform(0.0, 0.05))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    with os.fdopen(read_fd, "rb") as pipe:
        return {line.decode() for line in pipe.read().split()}


def test_kill_9_at_random_points_never_leaves_a_half_written_store(tmp_path: Path) -> None:
    store = tmp_path / "tokens.json"
    rng = random.Random(13)
    confirmed: set[str] = set()
    stored: set[str] = set()
    for _ in range(KILLS):
        told = _kill_mid_issue(store, rng)
        before, confirmed = stored, confirmed | told
        stored = {r.id for r in load_store(store, missing_ok=True).tokens}  # always parses
        assert confirmed <= stored  # every token the issuer was told about is in the store
        assert before <= stored and len(stored - before - told) <= 1  # at most the one in flight
    assert len(confirmed) > KILLS // 2, "the kills should fall between and during issues"
    _issue(store, "bob")  # the next writer clears the dead writers' temporaries
    assert [p.name for p in tmp_path.iterdir()] == ["tokens.json"]


@needs_namespace
def test_full_disk_mid_issue_keeps_the_last_whole_store(tmp_path: Path) -> None:
    store = tmp_path / "mnt" / "tokens.json"
    issue = ["gateway", "token", "issue", "--store", str(store), "--user", "alice"]
    listing = ["gateway", "token", "list", "--store", str(store), "--json"]
    script = textwrap.dedent(f"""
        "$PY" -m tests.unit.cli_driver --until-failure 2000 {" ".join(issue)}
        "$PY" -m tests.unit.cli_driver '{json.dumps([listing])}'
        "$PY" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["tokens"]))' {store}
        find $MNT -name '*.tmp' | wc -l
    """)
    done = _in_namespace(tmp_path, script, size="24k")
    assert done.returncode == 0, done.stderr
    full, listed = _results(done.stdout)[:2]
    issued = full["succeeded"]
    assert issued > 5 and full["rc"] == 2 and _one_line_error(full["err"]), full
    assert "no space left" in full["err"] and full["out"] == ""  # no token for a failed issue
    assert listed["rc"] == 0, listed
    assert done.stdout.splitlines()[-2] == str(issued)  # every confirmed token, no other
    assert done.stdout.splitlines()[-1] == "0"  # no temporary left behind


def _issue_many(store: Path, user: str, count: int) -> None:  # pragma: no cover - forked
    code = 1
    try:
        for _ in range(count):
            tokens.issue(store, user)
        code = 0
    finally:
        os._exit(code)


def test_concurrent_issuers_lose_no_token(tmp_path: Path) -> None:
    """Read-modify-write under the directory lock: four writers at once, every token kept."""
    store = tmp_path / "tokens.json"
    pids = []
    for n in range(4):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            _issue_many(store, f"dev{n}", 10)
        pids.append(pid)
    assert all(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0 for pid in pids)
    users = [r.user for r in load_store(store).tokens]
    assert sorted(users) == sorted(f"dev{n}" for n in range(4) for _ in range(10))

"""The roles' shared filters (plugins/filter), called directly: the loopback rule is the one the
auditor applies to sockets, and the lock reader refuses what it cannot read."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from ansible.errors import AnsibleFilterError

from auditor.checks._common import is_loopback

FILTERS = Path(__file__).resolve().parents[2] / "plugins" / "filter"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, FILTERS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NET = _load("offgrid_net")
LOCK = _load("offgrid_lock")
ADDRESSES = [
    "127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "localhost", "0.0.0.0", "::",
    "10.0.0.1", "127.0.0.1.example", "127.0.0.256", "localhost.example", "", "128.0.0.1",
    "::ffff:10.0.0.1", "fe80::1",
]  # fmt: skip


@pytest.mark.parametrize("address", ADDRESSES)
def test_roles_and_auditor_agree_on_loopback(address: str) -> None:
    assert NET.offgrid_loopback(address) is is_loopback(address)


def test_a_bracketed_ipv6_literal_counts_as_written_in_ollama_host() -> None:
    assert NET.offgrid_loopback("[::1]") and not NET.offgrid_loopback("[::2]")


def test_lock_reader_refuses_another_version_and_bad_json() -> None:
    assert LOCK.offgrid_lock("") == {}
    assert LOCK.offgrid_lock('{"lock_version": 1}') == {"lock_version": 1}
    with pytest.raises(AnsibleFilterError, match="lock_version 2, this playbook reads 1"):
        LOCK.offgrid_lock('{"lock_version": 2}', "b/offgrid.lock.json")
    with pytest.raises(AnsibleFilterError, match="lock_version none"):
        LOCK.offgrid_lock("{}")
    with pytest.raises(AnsibleFilterError, match="not valid JSON"):
        LOCK.offgrid_lock("{")


def test_cuda_versions_compare_numerically() -> None:
    assert LOCK.offgrid_version_below("12.2", "12.4")
    assert not LOCK.offgrid_version_below("12.10", "12.4")
    assert LOCK.offgrid_version_below("", "11.0")


def test_deb_pending_installs_missing_closure_and_requested_at_other_versions() -> None:
    pins = [
        {"name": "zstd", "version": "1.5.4+dfsg2-5"},
        {"name": "libzstd1", "version": "1.5.4+dfsg2-5"},
        {"name": "libc6", "version": "2.36-9+deb12u9"},
    ]
    query = "zstd 1.5.2 ii \nlibc6 2.36-9+deb12u10 ii \nlibzstd1 1.5.4+dfsg2-5 rc \n"
    pending = LOCK.offgrid_deb_pending(pins, query, ["zstd"])
    assert [p["name"] for p in pending] == ["zstd", "libzstd1"]
    assert LOCK.offgrid_deb_not_installed(pins, query) == [
        "zstd 1.5.4+dfsg2-5", "libzstd1 1.5.4+dfsg2-5", "libc6 2.36-9+deb12u9",
    ]  # fmt: skip

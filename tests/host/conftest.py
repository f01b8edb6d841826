"""Fixtures for the host suite: one booted workstation, one test bundle, one provisioning.

Everything here is session-scoped and torn down in `finally` blocks, so a failing test still
powers the machine off, deletes its network namespace and removes its unpacked root.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.host.bundle import TestBundle, build_test_bundle
from tests.host.inhost import provisioned_vars
from tests.host.workstation import SITE_PLAYBOOK, Workstation, booted, missing_prerequisites


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = missing_prerequisites()
    if reason is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.skip(reason=f"host suite: {reason}"))


def session_name() -> str:
    # Unique per pytest process, so concurrent sessions never replace each other's machine;
    # leftovers of a crashed session are removed by the next boot (its owner pid is gone).
    return os.environ.get("OFFGRID_WORKSTATION_NAME", f"ogt-{os.getpid()}")


@pytest.fixture(scope="session")
def workstation() -> Iterator[Workstation]:
    """A booted, unprovisioned workstation for the whole session."""
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    with booted(session_name()) as ws:
        yield ws


@pytest.fixture(scope="session")
def test_bundle(tmp_path_factory: pytest.TempPathFactory) -> TestBundle:
    """A complete bundle on the controller (llamacpp wheelhouse, auditor wheels, SmolLM2)."""
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    return build_test_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="session")
def provisioned(workstation: Workstation, test_bundle: TestBundle) -> Workstation:
    """The workstation after playbooks/site.yml with the llamacpp engine (the run is kept in
    workstation.provisioning)."""
    workstation.provisioning = workstation.playbook(
        SITE_PLAYBOOK, extra_vars=provisioned_vars(workstation, test_bundle)
    )
    return workstation

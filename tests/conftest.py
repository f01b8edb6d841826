"""Suite-wide markers: tests that need root or the booted workstation skip with a reason."""

from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import HealthCheck, settings

# Property tests are derandomized (the same generated cases every run, so CI is repeatable)
# and bounded; HYPOTHESIS_PROFILE=deep runs many more cases locally.
settings.register_profile(
    "offgrid",
    derandomize=True,
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)
settings.register_profile("deep", parent=settings.get_profile("offgrid"), max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "offgrid"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    is_root = os.geteuid() == 0
    has_nspawn = shutil.which("systemd-nspawn") is not None
    for item in items:
        if ("root" in item.keywords or "host" in item.keywords) and not is_root:
            item.add_marker(pytest.mark.skip(reason="needs root"))
        elif "host" in item.keywords and not has_nspawn:
            item.add_marker(pytest.mark.skip(reason="needs systemd-nspawn (make apt)"))

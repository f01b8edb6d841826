"""Suite-wide markers: tests that need root or the booted workstation skip with a reason."""

from __future__ import annotations

import os
import shutil

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    is_root = os.geteuid() == 0
    has_nspawn = shutil.which("systemd-nspawn") is not None
    for item in items:
        if ("root" in item.keywords or "host" in item.keywords) and not is_root:
            item.add_marker(pytest.mark.skip(reason="needs root"))
        elif "host" in item.keywords and not has_nspawn:
            item.add_marker(pytest.mark.skip(reason="needs systemd-nspawn (make apt)"))

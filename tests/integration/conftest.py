"""The real engine for integration tests: llama.cpp's server + SmolLM2-135M on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from auditor.embedded.llamacpp import EngineConfig, RunningEngine, bundled_model_path, running


@pytest.fixture(scope="session")
def llama_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    """One engine for the whole session; stopped (process group killed) at the end."""
    log = tmp_path_factory.mktemp("engine") / "llama-server.log"
    with running(EngineConfig(model=bundled_model_path(), threads=2), Path(log)) as engine:
        yield engine

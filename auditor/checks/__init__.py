"""Controls: one module per family. Verdicts only, from facts the inventory gathered."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping

from auditor.checks.interface import CheckFn, registered_checks

# Modules of this package that hold no check functions.
_NOT_FAMILIES = frozenset({"interface", "catalog", "runner", "waivers"})


def all_checks() -> Mapping[str, CheckFn]:
    """Import every family module (which registers its checks) and return the registry."""
    for info in pkgutil.iter_modules(__path__):
        if info.name not in _NOT_FAMILIES and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return registered_checks()

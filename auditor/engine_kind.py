"""The engines offgrid knows. Everything that differs between them is in that engine's
profile (auditor/inventory/profiles.py); code elsewhere asks the profile, never the name."""

from __future__ import annotations

from enum import StrEnum


class EngineKind(StrEnum):
    OLLAMA = "ollama"
    LLAMACPP = "llamacpp"


def engine_kind(text: str) -> EngineKind:
    """The kind named `text`; ValueError names the known ones."""
    try:
        return EngineKind(text)
    except ValueError:
        known = ", ".join(kind.value for kind in EngineKind)
        raise ValueError(f"unknown engine {text!r} (known: {known})") from None

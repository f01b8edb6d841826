"""Turn an offgrid lock file into the file lists the role copies and checks.

Every item has the same keys, so one stat/copy/assert sequence serves blobs, manifests and
GGUF files: ``src`` (path inside the bundle), ``dest`` (path inside the live directory),
``sha256``, ``size`` and ``label`` (what a failure message names).
"""

from __future__ import annotations

from typing import Any

_DEFAULT_PREFIX = "registry.ollama.ai/library/"


def _selected(lock: dict[str, Any], names: list[str]) -> list[dict[str, Any]]:
    models: list[dict[str, Any]] = lock.get("models", [])
    if not names:
        return models
    wanted = set(names) | {_DEFAULT_PREFIX + name for name in names}
    return [model for model in models if model["name"] in wanted]


def offgrid_models_unknown(lock: dict[str, Any], names: list[str]) -> list[str]:
    """Requested model names that the lock does not pin."""
    known = {m["name"] for m in lock.get("models", [])}
    return [n for n in names if n not in known and _DEFAULT_PREFIX + n not in known]


def offgrid_models_blobs(lock: dict[str, Any], names: list[str]) -> list[dict[str, Any]]:
    """Config and layer blobs of the selected models, each once (models share layers)."""
    blobs: dict[str, dict[str, Any]] = {}
    for model in _selected(lock, names):
        for blob in [model["config"], *model["layers"]]:
            name = "blobs/" + blob["digest"].replace(":", "-", 1)
            label = f"blob {blob['digest']} ({blob['mediaType']}) of {model['name']}"
            blobs.setdefault(blob["digest"], {
                "src": "models/ollama/" + name, "dest": name,
                "sha256": blob["digest"].removeprefix("sha256:"), "size": blob["size"],
                "label": label,
            })  # fmt: skip
    return list(blobs.values())


def offgrid_models_manifests(lock: dict[str, Any], names: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "src": "models/ollama/" + model["manifest"]["path"],
            "dest": model["manifest"]["path"],
            "sha256": model["manifest"]["sha256"],
            "size": model["manifest"]["size"],
            "label": f"manifest of {model['name']}",
        }
        for model in _selected(lock, names)
    ]


def offgrid_models_gguf(lock: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "src": gguf["path"],
            "dest": gguf["path"].rsplit("/", 1)[-1],
            "sha256": gguf["sha256"],
            "size": gguf["size"],
            "label": f"GGUF file {gguf['path']} ({gguf['name']})",
        }
        for gguf in lock.get("gguf", [])
    ]


def offgrid_models_pending(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items whose live copy is missing or differs: the ones to stage and install."""
    return [
        r["item"]
        for r in results
        if not r.get("skipped") and r.get("stat", {}).get("checksum") != r["item"]["sha256"]
    ]


def offgrid_models_parents(items: list[dict[str, Any]]) -> list[str]:
    """Every directory above the items' destinations, parents first (to create with owners)."""
    parents: set[str] = set()
    for item in items:
        parts = item["dest"].split("/")[:-1]
        parents.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(parents, key=lambda p: (p.count("/"), p))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "offgrid_models_unknown": offgrid_models_unknown,
            "offgrid_models_blobs": offgrid_models_blobs,
            "offgrid_models_manifests": offgrid_models_manifests,
            "offgrid_models_gguf": offgrid_models_gguf,
            "offgrid_models_pending": offgrid_models_pending,
            "offgrid_models_parents": offgrid_models_parents,
        }

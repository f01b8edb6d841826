"""Ollama model names and store paths."""

from pathlib import Path

import pytest

from auditor.errors import InputError
from auditor.models.store import (
    blob_relpath,
    check_digest,
    digest_from_blob_name,
    name_from_manifest_path,
    parse_name,
)

HEX = "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("llama3", "registry.ollama.ai/library/llama3:latest"),
        ("smollm2:135m", "registry.ollama.ai/library/smollm2:135m"),
        ("me/tuned:v1", "registry.ollama.ai/me/tuned:v1"),
        ("example.com:5000/team/coder:q4", "example.com:5000/team/coder:q4"),
        ("example.com/team/coder", "example.com/team/coder:latest"),
    ],
)
def test_names_get_ollama_defaults(text: str, expected: str) -> None:
    assert str(parse_name(text)) == expected


def test_manifest_path_and_short_name() -> None:
    name = parse_name("smollm2:135m")
    assert name.manifest_relpath == Path("manifests/registry.ollama.ai/library/smollm2/135m")
    assert name.short == "smollm2:135m"
    assert parse_name("h.io/ns/m:t").short == "h.io/ns/m:t"


@pytest.mark.parametrize(
    "text", ["", "../etc:passwd", "a/../b", "a/b/c/d", ".hidden", "m:..", "m:", "-x", "a b"]
)
def test_invalid_names_are_refused(text: str) -> None:
    with pytest.raises(InputError):
        parse_name(text)


def test_blob_paths_swap_colon_for_dash() -> None:
    assert blob_relpath(f"sha256:{HEX}") == Path(f"blobs/sha256-{HEX}")
    assert digest_from_blob_name(f"sha256-{HEX}") == f"sha256:{HEX}"
    assert digest_from_blob_name(f"sha256-{HEX}-partial") is None


@pytest.mark.parametrize("digest", ["sha256:abc", f"sha512:{HEX}", f"sha256:{HEX.upper()}", HEX])
def test_bad_digests_are_refused(digest: str) -> None:
    with pytest.raises(InputError):
        check_digest(digest)


def test_name_from_manifest_path(tmp_path: Path) -> None:
    path = tmp_path / "manifests/registry.ollama.ai/library/m/t"
    assert str(name_from_manifest_path(tmp_path, path)) == "registry.ollama.ai/library/m:t"

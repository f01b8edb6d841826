"""Byte-exact `ollama create` layout, checked against digests from Ollama's own tests.

The three golden digests come from ollama/ollama server/routes_create_test.go (v0.33.0-rc2):
a template layer "{{ .Prompt }}", a params layer {temperature 1, top_k 10, stop [USER:,
ASSISTANT:]} and the config blob of a GGUF with general.architecture "test" and no tensors.
"""

import hashlib
import json
from pathlib import Path

import pytest

from auditor.errors import InputError
from auditor.models import gojson
from auditor.models.build import add_gguf, human_number
from auditor.models.gguf import read_info
from auditor.models.modelfile import parse
from auditor.models.store import parse_name
from tests.unit.gguf_writer import gguf_bytes, write_gguf

TEMPLATE_PROMPT = "b507b9c2f6ca642bffcd06665ea7c91f235fd32daeefdf875a0f938db05fb315"
PARAMS_MERGE = "1d0ad71299d48c2fb7ae2b98e683643e771f8a5b72be34942af90d97a91c1e37"
CONFIG_TEST_ARCH = "99759ad5b91e723db0393d698ffbb448b1b7df5ff6377a108c49254583b1bc8c"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_go_encoder_matches_ollamas_params_blob() -> None:
    params = {"temperature": 1, "top_k": 10, "stop": ["USER:", "ASSISTANT:"]}
    assert _sha(gojson.encode(params)) == PARAMS_MERGE


@pytest.mark.parametrize(
    ("value", "text"),
    [(gojson.Float32(0.1), "0.1"), (gojson.Float32(1.0), "1"), (gojson.Float32(0.7), "0.7"),
     (gojson.Float32(1e-7), "1e-7"), (gojson.Float32(1e21), "1e+21"), (2.5, "2.5")],
)  # fmt: skip
def test_floats_are_written_like_go(value: object, text: str) -> None:
    assert gojson.encode_value(value) == text


def test_html_characters_are_escaped_like_go() -> None:
    assert gojson.encode(["<|im_end|>&"]) == b'["\\u003c|im_end|\\u003e\\u0026"]\n'


@pytest.mark.parametrize(
    ("count", "text"),
    [(0, "0"), (999, "999"), (1500, "2K"), (134_515_008, "134.52M"), (7_000_000, "7M"),
     (8_030_261_248, "8.0B"), (2_000_000_000, "2B")],
)  # fmt: skip
def test_parameter_size_like_ollama(count: int, text: str) -> None:
    assert human_number(count) == text


def test_built_model_has_ollamas_digests(tmp_path: Path) -> None:
    gguf = write_gguf(tmp_path / "test.gguf", {"general.architecture": "test"})
    store = tmp_path / "store"
    pin = add_gguf(
        store, parse_name("test"), gguf, parse('FROM test.gguf\nTEMPLATE "{{ .Prompt }}"')
    )
    assert pin.config.digest == f"sha256:{CONFIG_TEST_ARCH}"
    assert [layer.media_type for layer in pin.layers] == [
        "application/vnd.ollama.image.model",
        "application/vnd.ollama.image.template",
    ]
    assert pin.layers[0].sha256 == _sha(gguf.read_bytes())
    assert pin.layers[1].sha256 == TEMPLATE_PROMPT
    manifest = (store / "manifests/registry.ollama.ai/library/test/latest").read_bytes()
    assert pin.manifest.sha256 == _sha(manifest)
    document = json.loads(manifest)
    assert list(document) == ["schemaVersion", "mediaType", "config", "layers"]
    assert document["layers"][0]["from"] == "test.gguf"
    for blob in pin.blobs:
        assert _sha((store / f"blobs/sha256-{blob.sha256}").read_bytes()) == blob.sha256


def test_rootfs_variant_lists_layer_digests(tmp_path: Path) -> None:
    gguf = write_gguf(tmp_path / "m.gguf", {"general.architecture": "llama"}, [("w", (4, 8))])
    pin = add_gguf(tmp_path / "s", parse_name("m"), gguf, parse("FROM m.gguf"), rootfs=True)
    config = json.loads((tmp_path / f"s/blobs/sha256-{pin.config.sha256}").read_bytes())
    assert config["rootfs"] == {"type": "layers", "diff_ids": [pin.layers[0].digest]}
    assert config["model_type"] == "32"


def test_gguf_header_is_read(tmp_path: Path) -> None:
    path = write_gguf(
        tmp_path / "m.gguf",
        {"general.architecture": "llama", "general.file_type": 3},
        [("a", (10, 10)), ("b", (5,))],
    )
    info = read_info(path)
    assert (info.architecture, info.file_type, info.parameter_count) == ("llama", "Q4_1", 105)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GGML" + b"\0" * 20, "bad magic"),
        (gguf_bytes({"general.architecture": "x"})[:-3], "truncated"),
        (b"GGUF" + (9).to_bytes(4, "little") + b"\0" * 16, "unsupported GGUF version"),
        (b"GGUF" + (3).to_bytes(4, "little") + (1 << 40).to_bytes(8, "little") + b"\0" * 8,
         "implausible"),
    ],
)  # fmt: skip
def test_bad_gguf_is_input_error(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    with pytest.raises(InputError, match=message):
        read_info(path)


def test_adapters_are_refused(tmp_path: Path) -> None:
    gguf = write_gguf(tmp_path / "a.gguf", {"general.architecture": "llama"})
    with pytest.raises(InputError, match="ADAPTER"):
        add_gguf(tmp_path / "s", parse_name("m"), gguf, parse("FROM a.gguf\nADAPTER ./lora.gguf"))

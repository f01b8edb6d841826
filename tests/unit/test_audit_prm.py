"""OG-PRM-01 on recorded facts: served parameters against the lock's Modelfile parameters,
and how the served values are read (Ollama's /api/show text, runner argv)."""

from __future__ import annotations

from auditor.checks import prm
from auditor.inventory import ollama
from auditor.inventory.interface import Facts, ServedModel, ServedModels
from auditor.verdicts import Status
from tests.unit.audit_facts import facts, proc

PINNED = {"smollm2:135m-tuned": {"num_ctx": 8192, "num_gpu": 99, "temperature": 0.1}}


def served(*models: ServedModel, pinned: dict[str, dict[str, object]] | None = None) -> Facts:
    return facts(served=ServedModels(models, None, PINNED if pinned is None else pinned))


def model(**changes: object) -> ServedModel:
    values: dict[str, object] = {
        "name": "smollm2:135m-tuned", "source": "test", "num_ctx": 8192, "num_gpu": 99,
        "temperature": 0.1, "size": 1000, "size_vram": 1000,
    }  # fmt: skip
    values.update(changes)
    return ServedModel(**values)  # type: ignore[arg-type]


def test_matching_parameters_pass_with_offload_evidence() -> None:
    result = prm.served_with_pinned_parameters(served(model()))
    assert result.status is Status.PASS
    assert any("100% on the GPU" in e.value for e in result.evidence)


def test_float32_temperature_in_the_lock_matches() -> None:
    float32 = served(
        model(temperature=0.1), pinned={"smollm2:135m-tuned": {"temperature": 0.100000001}}
    )
    assert prm.served_with_pinned_parameters(float32).status is Status.PASS


def test_planted_mismatches_fail() -> None:
    short = prm.served_with_pinned_parameters(served(model(num_ctx=2048)))
    assert short.status is Status.FAIL and "num_ctx 2048 (lock: 8192)" in short.summary
    cpu = prm.served_with_pinned_parameters(served(model(num_gpu=0, size_vram=0)))
    assert cpu.status is Status.FAIL and "num_gpu" in cpu.summary
    assert any("not fully on the GPU" in e.value for e in cpu.evidence)
    hot = prm.served_with_pinned_parameters(served(model(temperature=0.8)))
    assert hot.status is Status.FAIL


def test_unstated_values_and_nothing_to_compare() -> None:
    partly = prm.served_with_pinned_parameters(served(model(temperature=None)))
    assert partly.status is Status.PASS and "not stated" in partly.summary
    blind = served(model(num_ctx=None, num_gpu=None, temperature=None))
    assert prm.served_with_pinned_parameters(blind).status is Status.ERROR
    idle = prm.served_with_pinned_parameters(served())
    assert idle.status is Status.NOT_APPLICABLE
    unpinned = prm.served_with_pinned_parameters(served(model(name="other:1b")))
    assert unpinned.status is Status.NOT_APPLICABLE
    unread = facts(served=ServedModels((), "GET /api/ps: refused"))
    assert prm.served_with_pinned_parameters(unread).status is Status.ERROR


def test_runner_argv_and_show_parameters_are_read() -> None:
    argv = ("/usr/local/lib/ollama/llama-server", "--model", "/b/sha256-1", "--port", "4100",
            "--host", "127.0.0.1", "--no-webui", "--offline", "-c", "16384", "-np", "2",
            "-ngl", "99")  # fmt: skip
    runner = ollama.runner(proc(4300, name="llama-server", cmdline=argv))
    assert runner is not None
    assert (runner.ctx, runner.slots, runner.gpu_layers) == (16384, 2, 99)
    text = (
        'num_ctx                        8192\ntemperature                    0.1\nstop "<|im_end|>"'
    )
    assert ollama._params_text(text) == {
        "num_ctx": "8192",
        "temperature": "0.1",
        "stop": "<|im_end|>",
    }

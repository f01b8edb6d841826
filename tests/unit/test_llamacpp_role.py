"""The offgrid_llamacpp role's pre-flight, run for real by ansible-playbook in check mode.

A local connection, one check-mode run, eleven "hosts", each with its own small bundle (a
wheelhouse of placeholder wheels, a placeholder GGUF file and a lock pinning them) and its own
CPU (a cpuinfo file) and driver (an nvidia-smi stand-in): a CPU that has every instruction set
the build needs, one that lacks AMX, a machine one of whose cores lacks AVX2, a pin without a
build record, a CUDA build on an old and on a new driver, a lock of another version, an
altered wheel, a name that only looks like loopback and a prompt-logging argument. Check mode
and throw-away install roots: whatever the verdict, nothing is written.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from auditor.models import lockfile
from tests.unit.local_play import fatal_results, recap_failed, run_role

pytestmark = pytest.mark.root  # the role's install tasks run as root, as on a workstation

VERSION = "0.3.36"
ENGINE_WHEEL = f"llama_cpp_python-{VERSION}-cp311-cp311-linux_x86_64.whl"
MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"
BASELINE = ["avx", "avx2", "bmi2", "f16c", "fma", "sse4_2"]
FLAGS = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 bmi1 bmi2 f16c fma popcnt"
CPU_BUILD = {
    "variant": "cpu-x86-64-v3", "cpu_baseline": BASELINE,
    "cmake_args": ["-DGGML_NATIVE=OFF", "-DGGML_AVX2=ON"], "compiler": "gcc 12.2.0",
    "python_tag": "cp311", "cuda": None,
}  # fmt: skip


def _bundle(path: Path, build: dict[str, Any] | None, lock_version: int = 1) -> Path:
    wheels = path / "engines/llamacpp/wheelhouse"
    wheels.mkdir(parents=True)
    (wheels / ENGINE_WHEEL).write_bytes(b"placeholder engine wheel " + path.name.encode())
    (wheels / "numpy-2.2.0-cp311-cp311-linux_x86_64.whl").write_bytes(b"placeholder numpy")
    model = path / "models/gguf" / MODEL
    model.parent.mkdir(parents=True)
    model.write_bytes(b"GGUF placeholder")
    pins = tuple(_pin(path, wheel) for wheel in sorted(wheels.iterdir()))
    engine = lockfile.EnginePin("llamacpp", VERSION, "wheelhouse", pins, ())
    gguf = _pin(path, model)
    lock = lockfile.Lock().with_engine(engine)
    lock = lock.with_gguf(lockfile.GGUFPin(model.stem, gguf.path, gguf.sha256, gguf.size))
    raw = json.loads(lockfile.dumps(lock))
    raw["lock_version"] = lock_version
    if build is not None:
        raw["engines"][0]["build"] = build
    (path / lockfile.LOCK_FILE).write_text(json.dumps(raw))
    return path


def _pin(bundle: Path, path: Path) -> lockfile.FilePin:
    import hashlib  # noqa: PLC0415

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return lockfile.FilePin(path.relative_to(bundle).as_posix(), digest, path.stat().st_size)


def _cpuinfo(path: Path, *cores: str) -> str:
    path.write_text("".join(f"processor\t: {i}\nflags\t\t: {f}\n\n" for i, f in enumerate(cores)))
    return str(path)


def _nvidia_smi(path: Path, cuda: str) -> str:
    path.write_text(
        "#!/bin/sh\n# offgrid TEST STAND-IN for nvidia-smi: NOT NVIDIA's tool; prints a header.\n"
        f"echo '| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: {cuda}     |'\n"
    )
    path.chmod(0o755)
    return str(path)


def _host(tmp: Path, name: str, bundle: Path, **variables: object) -> dict[str, object]:
    root = tmp / name
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "offgrid_bundle_dir": str(bundle),
        "offgrid_llamacpp_install_root": str(root / "opt"),
        "offgrid_llamacpp_stage_dir": str(root / "stage"),
        "offgrid_llamacpp_cpuinfo_path": _cpuinfo(tmp / f"{name}.cpuinfo", FLAGS),
        "offgrid_llamacpp_nvidia_smi": str(tmp / "no-nvidia-smi"),
        "offgrid_llamacpp_user_enabled": False,
        "offgrid_llamacpp_model_enabled": False,
        "offgrid_llamacpp_config_enabled": False,
        "offgrid_llamacpp_service_enabled": False,
        **variables,
    }


@pytest.fixture(scope="module")
def role_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("llamacpp-role")
    cpu = _bundle(tmp / "cpu", CPU_BUILD)
    amx = _bundle(tmp / "amx", {**CPU_BUILD, "cpu_baseline": sorted([*BASELINE, "amx_tile"])})
    cuda_build = {
        **CPU_BUILD,
        "variant": "cuda",
        "cuda": {"version": "12.4", "architectures": ["89"]},
    }
    cuda = _bundle(tmp / "cuda", cuda_build)
    altered = _bundle(tmp / "altered", CPU_BUILD)
    (altered / "engines/llamacpp/wheelhouse" / ENGINE_WHEEL).write_bytes(b"altered")
    hosts = {
        "fits": _host(tmp, "fits", cpu),
        "lacks-amx": _host(tmp, "lacks-amx", amx),
        "one-core-lacks-avx2": _host(
            tmp, "one-core-lacks-avx2", cpu,
            offgrid_llamacpp_cpuinfo_path=_cpuinfo(
                tmp / "mixed.cpuinfo", FLAGS, FLAGS.replace(" avx2", "")
            ),
        ),
        "no-build": _host(tmp, "no-build", _bundle(tmp / "no-build", None)),
        "cuda-old-driver": _host(
            tmp, "cuda-old-driver", cuda,
            offgrid_llamacpp_nvidia_smi=_nvidia_smi(tmp / "smi-12.2", "12.2"),
        ),
        "cuda-new-driver": _host(
            tmp, "cuda-new-driver", cuda,
            offgrid_llamacpp_nvidia_smi=_nvidia_smi(tmp / "smi-12.10", "12.10"),
        ),
        "cuda-no-driver": _host(tmp, "cuda-no-driver", cuda),
        "lock-v2": _host(tmp, "lock-v2", _bundle(tmp / "v2", CPU_BUILD, lock_version=2)),
        "altered-wheel": _host(tmp, "altered-wheel", altered),
        "lookalike-bind": _host(
            tmp, "lookalike-bind", cpu, offgrid_llamacpp_host="127.0.0.1.example"
        ),
        "verbose-arg": _host(tmp, "verbose-arg", cpu, offgrid_llamacpp_extra_args=["--verbose"]),
    }  # fmt: skip
    output = run_role(
        tmp, "offgrid_llamacpp", {"all": {"hosts": hosts}}, "all", {"ANSIBLE_FORKS": "8"},
        check=True,
    )  # fmt: skip
    messages = {
        host: [str(result.get("msg")) for result in results]
        for host, results in fatal_results(output).items()
    }
    return tmp, {"messages": messages, "failed": recap_failed(output), "output": output}


Run = tuple[Path, dict[str, Any]]


def _refused(run: dict[str, Any], host: str) -> str:
    assert run["failed"][host] == 1, run["output"]
    (message,) = run["messages"][host]
    return message


def test_a_cpu_with_every_needed_instruction_set_passes(role_run: Run) -> None:
    tmp, run = role_run
    assert run["failed"]["fits"] == 0, run["messages"].get("fits")
    assert run["failed"]["cuda-new-driver"] == 0, run["messages"].get("cuda-new-driver")
    assert not (tmp / "fits").exists()  # check mode wrote nothing


def test_a_cpu_lacking_an_instruction_set_is_refused_naming_it(role_run: Run) -> None:
    tmp, run = role_run
    message = _refused(run, "lacks-amx")
    assert "This host's CPU lacks amx_tile, which" in message
    assert "Nothing on the target was changed" in message
    assert not (tmp / "lacks-amx").exists()


def test_every_core_must_have_the_flags(role_run: Run) -> None:
    _, run = role_run
    assert "This host's CPU lacks avx2, which" in _refused(run, "one-core-lacks-avx2")


def test_a_pin_without_build_record_says_the_cpu_was_not_checked(role_run: Run) -> None:
    _, run = role_run
    assert run["failed"]["no-build"] == 0
    said = r'ok: \[no-build\] => \{\s*"msg": "The llama.cpp pin in [^"]* could not be checked'
    assert re.search(said, run["output"])
    assert not re.search(said.replace("no-build", "fits"), run["output"])


def test_a_cuda_build_needs_a_driver_of_its_cuda_version(role_run: Run) -> None:
    _, run = role_run
    message = _refused(run, "cuda-old-driver")
    assert "needs CUDA 12.4" in message and "the driver supports CUDA 12.2" in message
    assert "nvidia-smi reports no CUDA version" in _refused(run, "cuda-no-driver")


def test_a_lock_of_another_version_is_refused(role_run: Run) -> None:
    _, run = role_run
    assert "lock_version 2, this playbook reads 1" in _refused(run, "lock-v2")


def test_an_altered_wheel_is_refused(role_run: Run) -> None:
    _, run = role_run
    assert f"{ENGINE_WHEEL} (sha256 differs)" in _refused(run, "altered-wheel")


def test_bind_address_and_arguments_are_checked(role_run: Run) -> None:
    _, run = role_run
    assert "127.0.0.1.example is not a loopback address" in _refused(run, "lookalike-bind")
    assert "may not contain --verbose" in _refused(run, "verbose-arg")

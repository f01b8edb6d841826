"""`offgrid bundle export|add-gguf|build-engine|add-engine|add-debs|add-auditor|add-vulns|sign|
verify`.

Run on a connected staging box (or any box that has the models). Layout:

    <bundle>/offgrid.lock.json
    <bundle>/engines/ollama/<version>/ollama-linux-amd64.tar.zst   (or .tgz)
    <bundle>/engines/llamacpp/wheelhouse/*.whl
    <bundle>/auditor/wheelhouse/*.whl
    <bundle>/debs/*.deb                                          Debian packages for the target
    <bundle>/vulns/<id>.json                     the known-vulnerability table (OSV entries)
    <bundle>/models/ollama/{manifests,blobs}/…   an Ollama store
    <bundle>/models/gguf/<file>.gguf             plain GGUF files for the llamacpp engine

Every add-* command copies its input into the bundle while hashing it and records the pin
in the lock file, which is rewritten atomically after the files are in place. `sign` checks
the bundle against its lock and signs the lock (`<bundle>/offgrid.lock.json.sig`, ssh-keygen
-Y, namespace offgrid-bundle); `verify --allowed-signers` checks that signature first.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from auditor import fsutil
from auditor.console import Console
from auditor.enginebuild import cache, install, recipe
from auditor.errors import InputError, UsageError
from auditor.exitcodes import ExitCode
from auditor.models import lockfile, modelfile, signing
from auditor.models import pins as engines
from auditor.models.build import add_gguf
from auditor.models.copying import copy_hashed
from auditor.models.debs import add_debs
from auditor.models.digests import open_source
from auditor.models.export import export_model, installed_models
from auditor.models.lockfile import CudaBuild, DebPin, EngineBuild, FilePin, GGUFPin, Lock
from auditor.models.store import parse_name, prune_unreferenced
from auditor.models.summary import bundle_text
from auditor.models.verify import (
    BUNDLE_GGUF_DIR,
    BUNDLE_OLLAMA_STORE,
    BundleReport,
    verify_bundle,
)
from auditor.models.vulnbundle import add_vulns

from ._progress import byte_progress

NAME = "bundle"
HELP = "Build an offline bundle (engine, pinned models, auditor wheels) and verify it."

Handler = Callable[[argparse.Namespace, Console], int]


def _lock_path(bundle: Path) -> Path:
    return bundle / lockfile.LOCK_FILE


def _open_bundle(bundle: Path) -> Lock:
    """The bundle's lock, after checking it can be rewritten: a lock that is a symlink or sits
    in an unwritable directory is refused before anything is copied into the bundle."""
    bundle.mkdir(parents=True, exist_ok=True)
    fsutil.preflight(_lock_path(bundle))
    return lockfile.load_or_new(_lock_path(bundle))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def _save(lock: Lock, bundle: Path, console: Console) -> None:
    """Write the lock, then drop bundle blobs no pinned model references any more (a model
    rebuilt with another Modelfile leaves its old params blob behind)."""
    lockfile.save(lock, _lock_path(bundle))
    removed = prune_unreferenced(bundle / BUNDLE_OLLAMA_STORE, lock.models)
    if removed:
        console.info(f"removed {len(removed)} blob(s) no pinned model references")


def _export(args: argparse.Namespace, console: Console) -> int:
    source: Path = args.store
    if not (source / "manifests").is_dir():
        raise InputError(f"{source} is not an Ollama model store (no manifests/ directory)")
    names = installed_models(source) if args.all else [parse_name(n) for n in args.models]
    if not names:
        raise UsageError("name the models to export (--model NAME:TAG), or pass --all")
    lock = _open_bundle(args.bundle)
    for name in names:
        with byte_progress(console, f"export {name.short}", None) as progress:
            pin = export_model(source, args.bundle / BUNDLE_OLLAMA_STORE, name, progress)
        previous = lock.model(pin.name)
        if previous and previous.source and previous.manifest.sha256 == pin.manifest.sha256:
            pin = lockfile.ModelPin(pin.name, pin.manifest, pin.config, pin.layers, previous.source)
        lock = lock.with_model(pin)
        console.out(f"exported {name.short}  manifest sha256 {pin.manifest.sha256}")
    _save(lock, args.bundle, console)
    return ExitCode.OK


def _add_gguf(args: argparse.Namespace, console: Console) -> int:
    parsed = modelfile.load(args.modelfile)
    gguf = args.gguf or parsed.source_path(args.modelfile.parent)
    name = parse_name(args.name)
    lock = _open_bundle(args.bundle)
    if args.engine in ("ollama", "both"):
        with byte_progress(console, f"add {name.short}", _size(gguf)) as progress:
            pin = add_gguf(
                args.bundle / BUNDLE_OLLAMA_STORE,
                name,
                gguf,
                parsed,
                rootfs=args.rootfs,
                progress=progress,
            )
        lock = lock.with_model(pin)
        console.out(f"built {name.short}  manifest sha256 {pin.manifest.sha256}")
    if args.engine in ("llamacpp", "both"):
        rel = f"{BUNDLE_GGUF_DIR}/{gguf.name}"
        with byte_progress(console, f"copy {gguf.name}", _size(gguf)) as progress:
            copied = copy_hashed(gguf, args.bundle / rel, progress=progress)
        lock = lock.with_gguf(GGUFPin(name.short, rel, copied.sha256 or "", copied.size))
        console.out(f"pinned {rel}  sha256 {copied.sha256}")
    _save(lock, args.bundle, console)
    return ExitCode.OK


def _add_engine(args: argparse.Namespace, console: Console) -> int:
    lock = _open_bundle(args.bundle)
    if args.ollama_tarball:
        if not args.version:
            raise UsageError("--ollama-tarball needs --version (the Ollama release, e.g. 0.33.0)")
        pin = engines.add_ollama_tarball(args.bundle, args.ollama_tarball, args.version)
    else:
        pin = engines.add_llamacpp_wheelhouse(args.bundle, args.llamacpp_wheelhouse)
    lockfile.save(lock.with_engine(pin), _lock_path(args.bundle))
    for binary in pin.binaries:
        console.out(f"{pin.name} {pin.version}: {binary.path}  sha256 {binary.sha256}")
    return ExitCode.OK


def _build_engine(args: argparse.Namespace, console: Console) -> int:
    spec = recipe.spec_for(args.variant, tuple(args.cuda_arch.split(",")))
    lock = _open_bundle(args.bundle)
    built = cache.ensure_built(spec, args.cache or cache.default_cache_root(), console.info)
    with tempfile.TemporaryDirectory(prefix="offgrid-wheelhouse-") as scratch:
        install.build_wheelhouse(built, sys.executable, Path(scratch))
        pin = engines.add_llamacpp_wheelhouse(args.bundle, Path(scratch), _build_record(built))
    previous = lock.engine("llamacpp")
    lockfile.save(lock.with_engine(pin), _lock_path(args.bundle))
    if previous is not None:
        _drop_replaced(args.bundle, previous.artifacts, pin.artifacts)
    console.out(
        f"llamacpp {pin.version} ({spec.variant.name}): {len(pin.artifacts)} wheel(s); "
        f"needs CPU flags {', '.join(built.cpu_baseline)}"
    )
    return ExitCode.OK


def _build_record(built: cache.BuiltEngine) -> EngineBuild:
    spec = built.spec
    cuda = None if spec.cuda is None else CudaBuild(spec.cuda.version, spec.cuda.architectures)
    return EngineBuild(
        spec.variant.name, built.cpu_baseline, spec.cmake_args, spec.compiler, spec.python_tag, cuda
    )


def _drop_replaced(
    bundle: Path, old: Sequence[FilePin | DebPin], new: Sequence[FilePin | DebPin]
) -> None:
    """Files of a replaced pin that the new one no longer lists leave the bundle; called after
    the new lock is saved, so the lock never names a file that is gone."""
    keep = {n.path for n in new}
    for pinned in old:
        if pinned.path not in keep:
            (bundle / pinned.path).unlink(missing_ok=True)


def _add_debs(args: argparse.Namespace, console: Console) -> int:
    lock = _open_bundle(args.bundle)
    debs = add_debs(args.bundle, args.packages, console.info)
    lockfile.save(lock.with_debs(debs), _lock_path(args.bundle))
    if lock.debs is not None:
        _drop_replaced(args.bundle, lock.debs.packages, debs.packages)
    size = sum(p.size for p in debs.packages)
    console.out(
        f"pinned {len(debs.packages)} Debian package(s) for {debs.release}/{debs.architecture} "
        f"({size / 1e6:.1f} MB): {' '.join(sorted(p.name for p in debs.packages))}"
    )
    return ExitCode.OK


def _add_auditor(args: argparse.Namespace, console: Console) -> int:
    lock = _open_bundle(args.bundle)
    wheels = engines.add_wheels(args.bundle, args.wheelhouse, "auditor/wheelhouse")
    lockfile.save(lock.with_auditor(wheels), _lock_path(args.bundle))
    console.out(f"pinned {len(wheels)} auditor wheel(s)")
    return ExitCode.OK


def _add_vulns(args: argparse.Namespace, console: Console) -> int:
    lock = _open_bundle(args.bundle)
    pin = add_vulns(args.bundle, args.entries, args.source, args.date)
    lockfile.save(lock.with_vulns(pin), _lock_path(args.bundle))
    console.out(f"pinned {len(pin.files)} OSV entries, checked {pin.date}, from {pin.source}")
    return ExitCode.OK


def _check_files(bundle: Path, console: Console) -> BundleReport:
    if not bundle.is_dir():
        raise InputError(f"bundle directory not found: {bundle}")
    lock = lockfile.load(_lock_path(bundle))
    with byte_progress(console, "verify bundle", None) as progress:
        source = open_source(None, True, 0.0, progress=progress)
        report = verify_bundle(lock, bundle, source)
    console.out(bundle_text(report, source.finish()))
    return report


def _sign(args: argparse.Namespace, console: Console) -> int:
    """Sign only a bundle that matches its lock: a signature vouches for every pinned file."""
    report = _check_files(args.bundle, console)
    if not report.ok:
        console.error(f"{args.bundle}: not signed: the bundle does not match its lock")
        return ExitCode.FAILED
    path, info = signing.sign_lock(_lock_path(args.bundle), args.key)
    console.out(f"signed {_lock_path(args.bundle)} with key {info.fingerprint}: {path}")
    return ExitCode.OK


def _verify(args: argparse.Namespace, console: Console) -> int:
    if args.signature_only and args.allowed_signers is None:
        raise UsageError("--signature-only needs --allowed-signers FILE")
    if args.allowed_signers is not None:
        if not _lock_path(args.bundle).is_file():
            raise InputError(f"{_lock_path(args.bundle)}: no such file")
        signature = signing.verify_lock(_lock_path(args.bundle), args.allowed_signers)
        console.out(f"signature: {signature.reason}")
        if not signature.ok:
            console.error(f"{args.bundle}: refused: {signature.reason}")
            return ExitCode.FAILED
        if args.signature_only:
            return ExitCode.OK
    report = _check_files(args.bundle, console)
    if report.ok:
        return ExitCode.OK
    items = [*report.items, *(i for s in report.stores for i in s.items)]
    only_unreadable = not report.unpinned and not any(s.unpinned for s in report.stores)
    if only_unreadable and all(i.status in ("ok", "unreadable") for i in items):
        return ExitCode.INCOMPLETE
    return ExitCode.FAILED


def _bundle_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path, metavar="BUNDLE", help="bundle directory")


def _register_sign_verify(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sign = actions.add_parser(
        "sign",
        help="check a bundle against its lock, then sign the lock with an SSH key",
        description="Verify every file against the lock, then sign the lock with "
        "ssh-keygen -Y sign (namespace offgrid-bundle) into offgrid.lock.json.sig. The lock "
        "pins every file, so the signature covers them all.",
    )
    _bundle_arg(sign)
    sign.add_argument("--key", type=Path, required=True, help="SSH private key (no passphrase)")
    sign.set_defaults(bundle_handler=_sign)

    verify = actions.add_parser(
        "verify", help="check every file of a bundle against its lock (exit 0/1/2/3)"
    )
    _bundle_arg(verify)
    verify.add_argument(
        "--allowed-signers",
        type=Path,
        metavar="FILE",
        help="also require the lock's signature by a key in this ssh allowed_signers file",
    )
    verify.add_argument(
        "--signature-only",
        action="store_true",
        help="check only the lock's signature (the files are checked against it elsewhere)",
    )
    verify.set_defaults(bundle_handler=_verify)


def register(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="bundle_action", metavar="ACTION", required=True)

    export = actions.add_parser("export", help="copy pinned models from an Ollama store")
    _bundle_arg(export)
    export.add_argument(
        "--model",
        dest="models",
        action="append",
        default=[],
        metavar="NAME[:TAG]",
        help="a model to export (repeat for more)",
    )
    export.add_argument("--store", type=Path, required=True, help="the Ollama store to read")
    export.add_argument("--all", action="store_true", help="export every model in the store")
    export.set_defaults(bundle_handler=_export)

    gguf = actions.add_parser("add-gguf", help="build a model from a GGUF file and a Modelfile")
    _bundle_arg(gguf)
    gguf.add_argument("--name", required=True, help="model name, e.g. smollm2:135m-tuned")
    gguf.add_argument("--modelfile", type=Path, required=True, help="Modelfile (FROM the GGUF)")
    gguf.add_argument("--gguf", type=Path, help="the GGUF file (default: the Modelfile's FROM)")
    gguf.add_argument(
        "--engine",
        choices=("ollama", "llamacpp", "both"),
        default="ollama",
        help="ollama: an Ollama model; llamacpp: the plain GGUF file; both (default: ollama)",
    )
    gguf.add_argument(
        "--rootfs",
        action="store_true",
        help="also write rootfs.diff_ids into the config, as Ollama < 0.32.7 did",
    )
    gguf.set_defaults(bundle_handler=_add_gguf)

    engine = actions.add_parser("add-engine", help="pin an engine tarball or wheelhouse")
    _bundle_arg(engine)
    which = engine.add_mutually_exclusive_group(required=True)
    which.add_argument("--ollama-tarball", type=Path, help="ollama-linux-amd64.tar.zst or .tgz")
    which.add_argument("--llamacpp-wheelhouse", type=Path, help="directory of wheels")
    engine.add_argument("--version", help="Ollama version of the tarball")
    engine.set_defaults(bundle_handler=_add_engine)

    build = actions.add_parser(
        "build-engine",
        help="build llama-cpp-python[server] portably and pin it with its wheelhouse",
        description="Build the llama.cpp engine with the project's recipe (no native CPU "
        "tuning: it runs on every CPU that has the variant's instruction sets), collect its "
        "dependencies as wheels for this Python, and pin them with the build record.",
    )
    _bundle_arg(build)
    build.add_argument(
        "--variant",
        choices=sorted(recipe.VARIANTS),
        default=recipe.DEFAULT_VARIANT,
        help=f"CPU baseline or CUDA (default: {recipe.DEFAULT_VARIANT})",
    )
    build.add_argument(
        "--cuda-arch",
        default=",".join(recipe.DEFAULT_CUDA_ARCHITECTURES),
        help="cuda variant: comma-separated compute capabilities (default: %(default)s)",
    )
    build.add_argument("--cache", type=Path, help="build cache root (default: /var/cache/offgrid)")
    build.set_defaults(bundle_handler=_build_engine)

    debs = actions.add_parser(
        "add-debs", help="pin Debian packages (with their dependency closure) for the target"
    )
    _bundle_arg(debs)
    debs.add_argument("packages", nargs="+", metavar="PACKAGE", help="e.g. zstd nginx")
    debs.set_defaults(bundle_handler=_add_debs)

    auditor = actions.add_parser("add-auditor", help="pin the auditor's wheelhouse")
    _bundle_arg(auditor)
    auditor.add_argument("wheelhouse", type=Path, help="directory of wheels")
    auditor.set_defaults(bundle_handler=_add_auditor)

    vulns = actions.add_parser(
        "add-vulns",
        help="replace the bundle's known-vulnerability table with OSV JSON entries",
        description="Validate OSV JSON entries (a file, or a directory of *.json such as an "
        "unpacked osv.dev export) and pin them in the lock with the day they were checked and "
        "their source. The audit uses this table when it is newer than the auditor's own.",
    )
    _bundle_arg(vulns)
    vulns.add_argument("entries", type=Path, metavar="FILE|DIR", help="OSV entries")
    vulns.add_argument("--source", required=True, help="where they came from (a URL)")
    vulns.add_argument(
        "--date", help="day they were checked, YYYY-MM-DD (default: the newest 'modified')"
    )
    vulns.set_defaults(bundle_handler=_add_vulns)

    _register_sign_verify(actions)


def run(args: argparse.Namespace, console: Console) -> int:
    handler: Handler = args.bundle_handler
    return handler(args, console)

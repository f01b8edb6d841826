"""Read an offgrid lock file (offgrid.lock.json) for the roles: the one place that parses it.

Every role that needs a pin reads the lock through `offgrid_lock` (which refuses a lock
version it does not read) and then picks its part with the other filters here. Nothing here
touches the target: the filters run on the controller, per host, so hosts of one play may
use different bundles.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ansible.errors import AnsibleFilterError

LOCK_VERSION = 1

_FLAGS = re.compile(r"^flags\s*:(.*)$", re.MULTILINE)
_CUDA = re.compile(r"CUDA Version:\s*([0-9]+(?:\.[0-9]+)*)")


def offgrid_lock(
    text: str | dict[str, Any] | None, source: str = "offgrid.lock.json"
) -> dict[str, Any]:
    """The parsed lock, or {} when there is none (empty text); any other version is refused."""
    if isinstance(text, dict):
        lock = text
    elif not text or not str(text).strip():
        return {}
    else:
        try:
            lock = json.loads(str(text))
        except ValueError as error:
            raise AnsibleFilterError(f"{source}: not valid JSON ({error})") from error
    if not isinstance(lock, dict) or lock.get("lock_version") != LOCK_VERSION:
        found = lock.get("lock_version", "none") if isinstance(lock, dict) else "none"
        raise AnsibleFilterError(
            f"{source}: lock_version {found}, this playbook reads {LOCK_VERSION}; "
            "rebuild the bundle with the offgrid that matches these roles"
        )
    return lock


def offgrid_lock_engine(lock: dict[str, Any], name: str) -> dict[str, Any]:
    """The engine pin named name, or {} when the lock pins no such engine."""
    engines = [e for e in lock.get("engines", []) if e.get("name") == name]
    return engines[0] if engines else {}


def offgrid_lock_wheel_pins(files: list[dict[str, Any]]) -> dict[str, str]:
    """File pins as {wheel file name: sha256}, the form the wheelhouse checks compare."""
    return {pin["path"].rsplit("/", 1)[-1]: pin["sha256"] for pin in files}


def offgrid_lock_sha256(files: list[dict[str, Any]], file_name: str) -> str:
    """sha256 of the pinned file whose path ends in /file_name (or is file_name), else ''."""
    for pin in files:
        if pin["path"] == file_name or pin["path"].endswith("/" + file_name):
            return str(pin["sha256"])
    return ""


def offgrid_lock_build(engine: dict[str, Any]) -> dict[str, Any]:
    """The engine's build record ({} when the pin has none: no CPU check can be made)."""
    build = engine.get("build")
    return build if isinstance(build, dict) else {}


def offgrid_lock_debs(lock: dict[str, Any]) -> dict[str, Any]:
    """The bundle's Debian package set, or {} when the bundle carries none."""
    debs = lock.get("debs")
    return debs if isinstance(debs, dict) else {}


def offgrid_lock_deb_names(lock: dict[str, Any]) -> list[str]:
    return [pin["name"] for pin in offgrid_lock_debs(lock).get("packages", [])]


def offgrid_file_mismatches(results: list[dict[str, Any]]) -> list[str]:
    """From stat results looped over file pins: each pin whose file is missing or differs."""
    problems = []
    for result in results:
        if result.get("skipped"):
            continue
        item, stat = result["item"], result.get("stat", {})
        label = item.get("label") or item["path"]
        if not stat.get("exists"):
            problems.append(f"{label}: missing")
        elif stat.get("size") != item["size"]:
            problems.append(f"{label}: {stat.get('size')} bytes, pinned {item['size']}")
        elif stat.get("checksum") != item["sha256"]:
            problems.append(f"{label}: sha256 {stat.get('checksum')}, pinned {item['sha256']}")
    return problems


def offgrid_deb_pending(
    pins: list[dict[str, Any]], dpkg_query: str, wanted: list[str]
) -> list[dict[str, Any]]:
    """The .deb pins to install: every package of the closure that is not installed, and each
    wanted package installed at another version. dpkg_query is the output of
    `dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\n'`; an installed dependency at
    another version stays (apt refuses, offline, if it does not satisfy the new packages)."""
    installed = {}
    for line in dpkg_query.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2].startswith("ii"):
            installed[fields[0].split(":", 1)[0]] = fields[1]
    return [
        pin
        for pin in pins
        if pin["name"] not in installed
        or (pin["name"] in wanted and installed[pin["name"]] != pin["version"])
    ]


def offgrid_deb_not_installed(pins: list[dict[str, Any]], dpkg_query: str) -> list[str]:
    """'name version' of each pin that dpkg does not report installed at its pinned version."""
    installed = {
        (fields[0].split(":", 1)[0], fields[1])
        for fields in (line.split() for line in dpkg_query.splitlines())
        if len(fields) >= 3 and fields[2].startswith("ii")
    }
    return [
        f"{p['name']} {p['version']}" for p in pins if (p["name"], p["version"]) not in installed
    ]


def offgrid_missing_cpu_flags(cpuinfo: str, baseline: list[str]) -> list[str]:
    """The baseline flags some CPU of /proc/cpuinfo lacks (all of them when none is listed)."""
    per_cpu = [set(line.split()) for line in _FLAGS.findall(cpuinfo)]
    common = set.intersection(*per_cpu) if per_cpu else set()
    return sorted(flag for flag in baseline if flag not in common)


def offgrid_cuda_version(nvidia_smi_output: str) -> str:
    """The driver's CUDA version from nvidia-smi's header ("CUDA Version: 12.4"), else ''."""
    match = _CUDA.search(nvidia_smi_output or "")
    return match.group(1) if match else ""


def offgrid_version_below(version: str, minimum: str) -> bool:
    """Whether dotted version is lower than minimum (12.2 < 12.10); '' is below anything."""

    def parts(text: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"[0-9]+", text))

    return not version or parts(version) < parts(minimum)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "offgrid_lock": offgrid_lock,
            "offgrid_lock_engine": offgrid_lock_engine,
            "offgrid_lock_wheel_pins": offgrid_lock_wheel_pins,
            "offgrid_lock_sha256": offgrid_lock_sha256,
            "offgrid_lock_build": offgrid_lock_build,
            "offgrid_lock_debs": offgrid_lock_debs,
            "offgrid_lock_deb_names": offgrid_lock_deb_names,
            "offgrid_file_mismatches": offgrid_file_mismatches,
            "offgrid_deb_pending": offgrid_deb_pending,
            "offgrid_deb_not_installed": offgrid_deb_not_installed,
            "offgrid_missing_cpu_flags": offgrid_missing_cpu_flags,
            "offgrid_cuda_version": offgrid_cuda_version,
            "offgrid_version_below": offgrid_version_below,
        }

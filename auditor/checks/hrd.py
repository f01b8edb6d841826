"""OG-HRD: unit sandboxing, the service user, file modes of the engine and its models."""

from __future__ import annotations

import stat

from auditor.checks._common import require_engine
from auditor.checks.interface import check
from auditor.inventory.interface import Facts, FileModeFact, HardeningFacts
from auditor.verdicts import CannotEvaluate, Finding, Status, finding

NO_LOGIN_SHELLS = frozenset(
    {"/bin/false", "/usr/bin/false", "/usr/sbin/nologin", "/sbin/nologin", "/bin/nologin"}
)


def _hardening(facts: Facts) -> HardeningFacts:
    require_engine(facts, running=False)
    if facts.hardening is None:
        raise CannotEvaluate("hardening facts were not collected")
    return facts.hardening


@check("OG-HRD-01")
def unit_is_sandboxed(facts: Facts) -> Finding:
    hardening = _hardening(facts)
    score = hardening.security
    limit = facts.options.max_exposure
    if score.exposure is None:
        return finding(
            Status.ERROR, score.error or "no exposure score", [("output", score.output_tail)]
        )
    evidence = [
        ("exposure", f"{score.exposure:.1f} {score.rating}"),
        ("threshold", f"{limit:.1f}"),
        ("systemd-analyze", score.output_tail),
    ]
    if score.exposure > limit:
        return finding(
            Status.FAIL,
            f"exposure {score.exposure:.1f} {score.rating} is above {limit:.1f}",
            evidence,
        )
    return finding(Status.PASS, f"exposure {score.exposure:.1f} {score.rating}", evidence)


@check("OG-HRD-02")
def dedicated_unprivileged_user(facts: Facts) -> Finding:
    hardening = _hardening(facts)
    user = hardening.service_user
    if user is None or (user.name is None and user.uid is None):
        return finding(Status.ERROR, "the engine's user is unknown")
    evidence = [
        ("user", f"{user.name} (uid {user.uid}, from {user.source})"),
        ("shell", user.shell or "(no passwd entry)"),
    ]
    if user.uid == 0 or user.name == "root":
        return finding(Status.FAIL, "the engine runs as root", evidence)
    if user.shell is not None and user.shell not in NO_LOGIN_SHELLS:
        return finding(Status.FAIL, f"{user.name} has a login shell ({user.shell})", evidence)
    return finding(Status.PASS, f"the engine runs as {user.name} without a login shell", evidence)


def _mode_problem(
    fact: FileModeFact, service_uid: int | None, service_gid: int | None
) -> str | None:
    assert fact.mode is not None
    if fact.mode & stat.S_IWOTH and not (fact.is_dir and fact.mode & stat.S_ISVTX):
        return "writable by everyone"
    owners = {0} | (
        {service_uid} if fact.role == "model store" and service_uid is not None else set()
    )
    if fact.uid not in owners:
        return f"owned by uid {fact.uid}"
    groups = {0} | (
        {service_gid} if fact.role == "model store" and service_gid is not None else set()
    )
    if fact.mode & stat.S_IWGRP and fact.gid not in groups:
        return f"writable by group {fact.gid}"
    return None


@check("OG-HRD-03")
def files_not_writable_by_others(facts: Facts) -> Finding:
    hardening = _hardening(facts)
    user = hardening.service_user
    uid, gid = (user.uid, user.gid) if user else (None, None)
    evidence: list[tuple[str, str]] = []
    problems: list[str] = []
    missing: list[str] = []
    for fact in hardening.files:
        if not fact.exists or fact.mode is None:
            missing.append(f"{fact.role} {fact.path}")
            evidence.append((fact.role, f"{fact.path}: missing"))
            continue
        evidence.append((fact.role, f"{fact.path}: {fact.mode:04o} uid {fact.uid} gid {fact.gid}"))
        problem = _mode_problem(fact, uid, gid)
        if problem:
            problems.append(f"{fact.role} {fact.path} is {problem}")
    if problems:
        return finding(Status.FAIL, "; ".join(problems), evidence)
    if missing or not hardening.files:
        return finding(
            Status.ERROR, "cannot inspect: " + (", ".join(missing) or "no files"), evidence
        )
    return finding(
        Status.PASS, f"{len(hardening.files)} path(s) writable only by their owners", evidence
    )

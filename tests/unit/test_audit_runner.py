"""The runner: not_applicable by engine, errors instead of crashes, waivers, exit codes."""

from __future__ import annotations

from auditor.checks.catalog import load_catalog
from auditor.checks.runner import evaluate, exit_code, run_controls
from auditor.checks.waivers import WaiverSet
from auditor.exitcodes import ExitCode
from auditor.inventory.interface import Facts
from auditor.verdicts import Result, Status, Waiver
from tests.unit.audit_facts import engine, facts


def _boom(_: Facts) -> Result:
    raise KeyError("missing field")


def test_a_raising_check_is_an_error_with_the_exception_as_evidence() -> None:
    control = load_catalog()["OG-NET-01"]
    result = evaluate(control, _boom, facts())
    assert result.status is Status.ERROR
    assert "KeyError" in result.evidence[0].value


def test_engine_specific_controls_are_not_applicable_to_other_engines() -> None:
    control = load_catalog()["OG-CFG-03"]  # ollama only
    result = evaluate(control, _boom, facts(engine=engine(kind="llamacpp")))
    assert result.status is Status.NOT_APPLICABLE


def test_every_catalog_control_gets_a_result_and_none_is_missing() -> None:
    results = run_controls(facts())
    assert [r.id for r in results] == sorted(load_catalog())


def test_waiver_turns_a_fail_into_waived_and_exit_zero() -> None:
    checks = {"OG-NET-01": lambda f: Result("OG-NET-01", Status.FAIL, "exposed")}
    catalog = {"OG-NET-01": load_catalog()["OG-NET-01"]}
    waiver = Waiver("OG-NET-01", "lab box", "2099-01-01")
    unwaived = run_controls(facts(), None, catalog, checks)
    assert exit_code(unwaived) is ExitCode.FAILED
    waived = run_controls(facts(), WaiverSet({"OG-NET-01": waiver}, ()), catalog, checks)
    assert waived[0].waiver == waiver
    assert exit_code(waived) is ExitCode.OK


def test_exit_codes_fail_beats_error_beats_pass() -> None:
    catalog = load_catalog()
    two = {cid: catalog[cid] for cid in ("OG-NET-01", "OG-NET-02")}

    def run(first: Status, second: Status) -> ExitCode:
        checks = {
            "OG-NET-01": lambda f: Result("OG-NET-01", first, ""),
            "OG-NET-02": lambda f: Result("OG-NET-02", second, ""),
        }
        return exit_code(run_controls(facts(), None, two, checks))

    assert run(Status.PASS, Status.NOT_APPLICABLE) is ExitCode.OK
    assert run(Status.PASS, Status.ERROR) is ExitCode.INCOMPLETE
    assert run(Status.FAIL, Status.ERROR) is ExitCode.FAILED


def test_no_engine_makes_engine_controls_error_never_pass() -> None:
    results = {r.id: r for r in run_controls(facts(engine=None))}
    for cid in ("OG-NET-01", "OG-NET-03", "OG-NET-04", "OG-CFG-01", "OG-VUL-01", "OG-HRD-02"):
        assert results[cid].status is Status.ERROR, cid

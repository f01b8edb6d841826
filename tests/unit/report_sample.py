"""A realistic report for the report-layer tests: every status, a waiver, hostile
evidence text, a benchmark section and an integrity section."""

from __future__ import annotations

from typing import Any

from auditor.checks.catalog import load_catalog
from auditor.report.bench_json import benchmark_from_json
from auditor.report.model import (
    EnginePinCheck,
    EngineSection,
    ExtraSection,
    FileCheck,
    HashingSection,
    HostInfo,
    IntegritySection,
    InterfaceRef,
    ModelCheck,
    NamespaceRef,
    PrivilegeSection,
    ProcessRef,
    Report,
    StoreSection,
    UnitSection,
)
from auditor.verdicts import ControlResult, Evidence, Status, Waiver

HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)> | `tick` *star*'


def _control(cid: str, status: Status, summary: str, *evidence: Evidence) -> ControlResult:
    entry = load_catalog()[cid]
    return ControlResult(
        id=cid,
        family=entry.family,
        title=entry.title,
        severity=entry.severity.value,
        status=status,
        summary=summary,
        evidence=evidence,
        rationale=entry.rationale,
        remediation=entry.remediation,
        references=entry.references,
    )


def _stats(median: float, spread: float) -> dict[str, float]:
    return {
        "median": median,
        "p95": median + 2 * spread,
        "p99": median + 3 * spread,
        "mean": median + spread / 4,
        "min": median - spread,
        "max": median + 4 * spread,
        "count": 99,
    }


def _category(name: str, lo: int, hi: int, ttft: float, total: float) -> dict[str, Any]:
    return {
        "name": name,
        "title": f"{name.capitalize()} tasks",
        "target_tokens": [lo, hi],
        "max_tokens": hi,
        "requests": 100,
        "failures": 1,
        "errors": ["read timeout after 120 s"],
        "token_sources": {"server-usage": 99},
        "ttft_ms": _stats(ttft, 20.0),
        "total_ms": _stats(total, 150.0),
        "tpot_ms": _stats(29.5, 1.5),
        "itl_ms": _stats(29.0, 2.0),
        "decode_tps": _stats(33.8, 1.2),
        "output_tokens": _stats(float(hi - 10), 4.0),
        "server": {
            "source": "llama.cpp",
            "requests": 99,
            "prompt_eval_ms": _stats(12.0, 1.0),
            "decode_tps": _stats(34.9, 1.0),
            "load_ms": None,
        },
        "samples": {
            "ok": [True] * 99 + [False],
            "ttft_ms": [ttft + (i * 37 % 50) for i in range(99)] + [None],
            "total_ms": [total + (i * 53 % 300) for i in range(99)] + [None],
            "output_tokens": [hi - (i % 20) for i in range(99)] + [None],
        },
    }


def benchmark_section() -> dict[str, Any]:
    return {
        "schema": "offgrid-benchmark/1",
        "suite": {"name": "offgrid-coding", "version": "1"},
        "endpoint": "http://127.0.0.1:8080",
        "api": "openai",
        "model": "SmolLM2-135M-Instruct.Q4_1",
        "settings": {
            "runs": 100,
            "warmup": 5,
            "nonce": True,
            "temperature": 0.0,
            "seed": 42,
            "percentile_method": "linear",
            "connection": "keep-alive",
        },
        "categories": [
            _category("completion", 16, 64, 160.4, 980.2),
            _category("chat", 64, 256, 210.7, 4300.5),
        ],
        "cold_start": {
            "measured": True,
            "method": "systemctl restart offgrid-llamacpp.service",
            "restart_to_ready_ms": 1840.0,
            "restart_to_first_token_ms": 2210.5,
            "first_request": {
                "ok": True,
                "error": None,
                "ttft_ms": 370.5,
                "total_ms": 1650.0,
                "output_tokens": 40,
            },
            "reason": None,
        },
        "concurrency": [
            {
                "users": users,
                "requests": 20 * users,
                "failures": 0,
                "throughput_tps": 33.0 * users**0.6,
                "ttft_ms": _stats(160.0 * users, 30.0),
                "total_ms": _stats(1000.0 * users, 100.0),
            }
            for users in (1, 2, 4)
        ],
        "crossover": {
            "model": "SmolLM2-135M-Instruct.Q4_1",
            "local": {"ttft_ms": 160.4, "decode_tps": 33.8},
            "cloud": {
                "label": "hosted API (user-supplied)",
                "ttft_ms": {"low": 300.0, "high": 900.0},
                "decode_tps": {"low": 50.0, "high": 120.0},
            },
            "crossover_tokens": {"best": 12.0, "typical": 25.5, "worst": None},
            "decision_matrix": [
                {
                    "use_case": "inline completion",
                    "category": "completion",
                    "recommendation": "Local",
                    "rationale": "short outputs: local TTFT wins below the crossover",
                },
                {
                    "use_case": "long refactor",
                    "category": None,
                    "recommendation": "Hybrid",
                    "rationale": "cloud decodes faster; keep sensitive code local",
                },
            ],
        },
        "tco": None,
    }


def integrity_section() -> IntegritySection:
    files = (
        FileCheck("/opt/ollama/bin/ollama", "bin/ollama", "ab" * 32, "ab" * 32, True, None),
        FileCheck("/opt/ollama/lib/libggml.so", None, "cd" * 32, None, True, None),
    )
    models = (
        ModelCheck("qwen2.5-coder:7b", "ok", ()),
        ModelCheck("smollm2:135m", "mismatch", ("blob sha256-ab12 size 10 != 12", HOSTILE)),
    )
    return IntegritySection(
        lock_path="/etc/offgrid/models.lock",
        lock_sha256="9f" * 32,
        error=None,
        engine=EnginePinCheck("ollama", "0.33.0", "ok", None, files),
        hashing=HashingSection("full", "--full", 7, 3, 4_812_000_000, 12.75),
        store=StoreSection("/usr/share/ollama/.ollama/models", "ollama", models, ()),
    )


def engine_section() -> EngineSection:
    return EngineSection(
        kind="ollama", discovered_by="unit", pid=812, create_time=1764000000.5, name="ollama",
        user="ollama", exe="/usr/local/bin/ollama", cmdline=("/usr/local/bin/ollama", "serve"),
        version="0.33.0", port=11434, listen_host="127.0.0.1",
        tree=(ProcessRef(812, 1764000000.5, "ollama"),), other_candidates=(),
        unit=UnitSection("ollama.service", "systemctl", "/etc/systemd/system/ollama.service", ()),
    )  # fmt: skip


def sample_report(*, benchmark: bool = True, integrity: bool = True) -> Report:
    waiver = Waiver("OG-HRD-01", "GPU driver needs /dev access & writable memory", "2099-12-31")
    controls = (
        _control(
            "OG-NET-01",
            Status.PASS,
            "engine listens on 127.0.0.1:11434 only",
            Evidence("listeners", "tcp 127.0.0.1:11434 pid=812 (ollama)"),
        ),
        _control(
            "OG-NET-03",
            Status.FAIL,
            "engine tree connected to 203.0.113.9:443",
            Evidence("connection", "pid=812 ollama -> 203.0.113.9:443 ESTABLISHED"),
            Evidence("environ", HOSTILE),
        ),
        _control("OG-CFG-01", Status.ERROR, "cannot read /proc/812/environ: permission denied"),
        _control("OG-TEL-01", Status.NOT_APPLICABLE, "no IDE users configured"),
        ControlResult(
            **{
                **_control("OG-HRD-01", Status.FAIL, "exposure 4.1 MEDIUM").__dict__,
                "waiver": waiver,
            }
        ),
    )
    return Report(
        tool_version="0.1.0",
        host=HostInfo(hostname="ws-07", os="Debian GNU/Linux 12", kernel="6.1.0", machine="x86_64"),
        started_at="2026-11-24T02:00:00.123456+00:00",
        finished_at="2026-11-24T02:00:07.654321+00:00",
        privilege=PrivilegeSection(
            1000, False, "Ran without root: other users' sockets and environments are hidden."
        ),
        engine=engine_section(),
        controls=controls,
        incomplete=("pid 4242 vanished during the scan", "pid 1 environ: permission denied"),
        benchmark=benchmark_from_json(benchmark_section()) if benchmark else None,
        integrity=integrity_section() if integrity else None,
        extra=ExtraSection(namespaces=namespaces()),
    )


def namespaces() -> tuple[NamespaceRef, ...]:
    """The audit's namespace and a container engine's, one interface each way."""
    return (
        NamespaceRef("net:[4026531840]", "audit", 900, True, None, 31, None, None, None),
        NamespaceRef(
            "net:[4026532291]", "engine", 812, False, "/system.slice/docker-3f2a.scope", 2,
            (InterfaceRef("lo", "loopback", True, ("127.0.0.1/8",)),
             InterfaceRef("eth0", "veth", True, ("172.17.0.2/16",))),
            6, None,
        ),
        NamespaceRef("net:[4026532400]", "other engine candidate", 990, False, None, None,
                     None, None, "setns into /proc/990/ns/net: Operation not permitted"),
    )  # fmt: skip

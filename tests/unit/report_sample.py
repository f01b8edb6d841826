"""A realistic report for the report-layer tests: every status, a waiver, hostile
evidence text, a benchmark section and an integrity section."""

from __future__ import annotations

from typing import Any

from auditor.checks.catalog import load_catalog
from auditor.report.model import HostInfo, Report
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
        "token_sources": {"usage": 99},
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
            "first_request": {"ok": True, "ttft_ms": 370.5, "output_tokens": 40},
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


def integrity_section() -> dict[str, Any]:
    return {
        "mode": "full",
        "lock_path": "/etc/offgrid/models.lock",
        "lock_sha256": "9f" * 32,
        "store": "/usr/share/ollama/.ollama/models",
        "engine": {
            "name": "ollama",
            "status": "ok",
            "files": [
                {"path": "/opt/ollama/bin/ollama", "sha256": "ab" * 32, "ok": True, "error": None},
                {"path": "/opt/ollama/lib/libggml.so", "sha256": "cd" * 32, "ok": True},
            ],
        },
        "models": [
            {"name": "qwen2.5-coder:7b", "status": "ok", "problems": []},
            {
                "name": "smollm2:135m",
                "status": "mismatch",
                "problems": ["blob sha256-ab12 size 10 != 12", HOSTILE],
            },
        ],
        "blobs_hashed": 7,
        "blobs_from_cache": 3,
        "bytes_hashed": 4_812_000_000,
        "duration_s": 12.75,
    }


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
        privilege={
            "euid": 1000,
            "is_root": False,
            "note": "Ran without root: other users' sockets and environments are hidden.",
        },
        engine={
            "kind": "ollama",
            "pid": 812,
            "unit": "ollama.service",
            "listen": ["127.0.0.1:11434"],
        },
        controls=controls,
        incomplete=("pid 4242 vanished during the scan", "pid 1 environ: permission denied"),
        benchmark=benchmark_section() if benchmark else None,
        integrity=integrity_section() if integrity else None,
    )

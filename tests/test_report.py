"""traceconv report: CI artifacts that are complete, deterministic, self-contained and safe
against hostile names from traces."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from traceconv.cli import main

ROOT = Path(__file__).resolve().parent.parent
GPU = ROOT / "fixtures" / "kineto" / "gpu"
TRACE = sorted(GPU.glob("1769071195.66-TP-*.trace.json.gz"))
OTEL = ROOT / "fixtures" / "otel" / "sglang_pp2dp2tp2.jsonl"


def hostile_trace(tmp_path: Path) -> Path:
    """A copy of a fixture where one kernel is called <script>alert(1)</script>."""
    doc = json.loads(gzip.open(TRACE[0]).read(), parse_float=Decimal)
    for e in doc["traceEvents"]:
        if e.get("cat") == "kernel":
            e["name"] = "<script>alert(1)</script>"
            break
    out = tmp_path / "evil-TP-0.trace.json"
    out.write_text(json.dumps(doc, default=lambda d: float(d)))
    return out


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    out = tmp_path_factory.mktemp("art")
    assert main(["-q", "report", *map(str, TRACE), "--otel", str(OTEL), "-o", str(out)]) == 0
    return out


def test_all_artifacts(artifacts):
    names = {p.name for p in artifacts.iterdir()}
    assert {"report.html", "summary.md", "summary.json", "trace.pftrace", "steps_per_step.parquet", "steps_per_mode.parquet",
            "top_kernels.parquet", "requests.parquet", "request_stages.parquet"} <= names
    summary = json.loads((artifacts / "summary.json").read_text())
    assert summary["schema"] == "traceconv-report/1"
    assert set(summary) >= {"steps", "requests", "inputs", "artifacts"}
    assert summary["steps"]["modes"]["prefill"]["steps"] > 0
    per_step = pd.read_parquet(artifacts / "steps_per_step.parquet")
    assert per_step["kernel_ns"].dtype == "int64"


def test_html_is_self_contained_with_plots(artifacts):
    html = (artifacts / "report.html").read_text()
    assert html.count("<svg") >= 3 and "<table" in html
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", html), "no network resources"
    assert "<script" not in html.lower()


def test_deterministic_except_the_generated_at_line(artifacts, tmp_path):
    again = tmp_path / "again"
    assert main(["-q", "report", *map(str, TRACE), "--otel", str(OTEL), "-o", str(again)]) == 0
    for name in ("summary.json", "summary.md", "steps_per_mode.parquet", "trace.pftrace"):
        assert (artifacts / name).read_bytes() == (again / name).read_bytes(), name
    strip = lambda s: re.sub(r"generated at [^<]*", "", s)  # noqa: E731
    assert strip((artifacts / "report.html").read_text()) == strip((again / "report.html").read_text())


def test_names_from_traces_are_escaped(tmp_path):
    evil = hostile_trace(tmp_path)
    out = tmp_path / "out"
    assert main(["-q", "report", str(evil), "-o", str(out), "--no-trace"]) == 0
    html = (out / "report.html").read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    md = (out / "summary.md").read_text()
    assert "<script>" not in md


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")), reason="Debian chromium is not installed")
def test_renders_in_headless_chromium(artifacts, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--enable-logging=stderr", "--v=0", "--dump-dom", (artifacts / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0
    assert proc.stdout.count("<svg") >= 3 and "<table" in proc.stdout
    console_errors = [l for l in proc.stderr.splitlines() if "CONSOLE" in l and "error" in l.lower()]
    assert not console_errors


LOGS = ROOT / "fixtures" / "logs"


def test_iteration_findings_gate_the_report(tmp_path, capsys):
    out = tmp_path / "old"
    assert main(["-q", "report", "--log", str(LOGS / "overlap_old_dp2pp2.log.gz"), "-o", str(out), "--fail-on-findings"]) == 3
    assert "findings" in capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["iterations"]["findings"] > 0 and (out / "iteration_findings.parquet").exists()
    assert "findings" in (out / "summary.md").read_text()
    fixed = tmp_path / "fixed"
    assert main(["-q", "report", "--log", str(LOGS / "overlap_fixed_dp2pp2.log.gz"), "-o", str(fixed), "--fail-on-findings"]) == 0
    assert json.loads((fixed / "summary.json").read_text())["iterations"]["findings"] == 0

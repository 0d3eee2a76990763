"""traceconv diff: a run against itself shows no change; one kernel slowed by 20% is named and
trips the gate (exit 3, decisions.md)."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

from traceconv.cli import main

ROOT = Path(__file__).resolve().parent.parent
TRACE = sorted((ROOT / "fixtures" / "kineto" / "gpu").glob("1769071195.66-TP-0-*.trace.json.gz"))[0]


def _decimal_json(doc) -> str:
    return json.dumps(doc, default=lambda d: float(d))


def test_run_against_itself_is_unchanged(capsys):
    assert main(["diff", str(TRACE), str(TRACE), "--fail-above", "5%"]) == 0
    captured = capsys.readouterr()
    assert "no regression" in captured.err


def test_slowed_kernel_is_named_and_gates(tmp_path, capsys):
    doc = json.loads(gzip.open(TRACE).read(), parse_float=Decimal)
    kernels = sorted({e["name"] for e in doc["traceEvents"] if e.get("cat") == "kernel"})
    target = next(k for k in kernels if k.startswith("void flash::flash_fwd_kernel"))
    for e in doc["traceEvents"]:
        if e.get("cat") == "kernel" and e["name"] == target:
            e["dur"] = (e["dur"] * Decimal("1.2")).quantize(Decimal("0.001"))
    cand = tmp_path / "cand.trace.json"
    cand.write_text(_decimal_json(doc))
    assert main(["diff", str(TRACE), str(cand), "--fail-above", "5%"]) == 3
    err = capsys.readouterr().err
    assert target in err and "gate:" in err
    assert main(["diff", str(TRACE), str(cand), "--fail-above", "25%"]) == 0
    capsys.readouterr()
    assert main(["diff", str(TRACE), str(cand), "--kernels", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    row = next(r for r in rows if r["kernel"] == target)
    assert abs(row["mean_change"] - 0.2) < 0.01

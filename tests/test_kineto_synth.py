"""Checks of the synthetic Kineto generator (fixtures/kineto_synth.py) and the committed
Kineto fixtures: the JSON it writes agrees with the truth it returns.

The reference attribution here re-derives the truth independently from the written
JSON (exact decimal parsing), so a bug in either side shows up as a mismatch.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import sys
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"


def _load_synth():
    spec = importlib.util.spec_from_file_location("kineto_synth", FIXTURES / "kineto_synth.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("kineto_synth", mod)
    spec.loader.exec_module(mod)
    return mod


ks = _load_synth()

GPU_CATS = {"kernel", "gpu_memcpy", "gpu_memset", "Kernel", "Memcpy", "Memset"}
RUNTIME_CATS = {"cuda_runtime", "Runtime"}
STEP_CATS = {"user_annotation", "Operator"}


def _loads(text: str) -> dict:
    return json.loads(text, parse_float=Decimal)


def _ns(value, base: int | None) -> int:
    """Exact ns from a µs JSON number (Decimal or int) plus the file's base."""
    ns = int(Decimal(value) * 1000)
    assert Decimal(value) * 1000 == ns, value
    return ns + (base or 0)


def _union(iv):
    total, cur = 0, None
    for s, e in sorted(iv):
        if cur is None or s > cur[1]:
            if cur:
                total += cur[1] - cur[0]
            cur = [s, e]
        else:
            cur[1] = max(cur[1], e)
    return total + (cur[1] - cur[0] if cur else 0)


def reference_attribution(doc: dict) -> dict:
    """nsys rule from the JSON alone -> {step start ns: stats}, unattributed stats."""
    base = doc.get("baseTimeNanoseconds")
    ev = doc["traceEvents"]
    steps, launches, gpu = [], {}, []
    for e in ev:
        if e.get("ph") != "X":
            continue
        cat = e.get("cat")
        if cat in STEP_CATS and e["name"].startswith("step["):
            s = _ns(e["ts"], base)
            steps.append((e["pid"], str(e["tid"]), s, s + _ns(e["dur"], None), e["name"]))
        elif cat in RUNTIME_CATS:
            s = _ns(e["ts"], base)
            launches[e["args"]["correlation"]] = (e["pid"], str(e["tid"]), s, s + _ns(e["dur"], None))
        elif cat in GPU_CATS:
            s = _ns(e["ts"], base)
            gpu.append((e["args"]["correlation"], s, s + _ns(e["dur"], None), cat))
    per_step = {s[2]: [] for s in steps}
    un = []
    for corr, gs, ge, cat in gpu:
        pid, tid, ls, le = launches[corr]
        enc = [s for s in steps if s[0] == pid and s[1] == tid and s[2] <= ls and le <= s[3]]
        if enc:
            inner = max(enc, key=lambda s: (s[2], -s[3]))
            per_step[inner[2]].append((gs, ge, cat))
        else:
            un.append((gs, ge, cat))

    def stats(ops):
        return {"n_gpu_ops": len(ops), "gpu_op_time_ns": sum(e - s for s, e, _ in ops),
                "kernel_time_ns": sum(e - s for s, e, c in ops if c in ("kernel", "Kernel")),
                "gpu_busy_ns": _union((s, e) for s, e, _ in ops)}

    return {
        "steps": {k: stats(v) for k, v in per_step.items()},
        "labels": sorted((s[2], s[4]) for s in steps),
        "unattributed": stats(un),
        "total": stats([(s, e, c) for _, s, e, c in gpu]),
    }


def check_trace_against_truth(doc: dict, truth: dict) -> None:
    ref = reference_attribution(doc)
    # labels and ranges
    assert [lbl for _, lbl in ref["labels"]] == [
        r["label"] for r in sorted(truth["steps"], key=lambda r: r["cpu_start_ns"])]
    for row in truth["steps"]:
        got = ref["steps"][row["cpu_start_ns"]]
        for k in ("n_gpu_ops", "gpu_op_time_ns", "kernel_time_ns", "gpu_busy_ns"):
            assert got[k] == row[k], (row["label"], k, got[k], row[k])
    for k in ("n_gpu_ops", "gpu_op_time_ns", "kernel_time_ns", "gpu_busy_ns"):
        assert ref["unattributed"][k] == truth["unattributed"][k], k
        assert ref["total"][k] == truth["totals"][k], k
    # self-consistency of the truth
    tot = truth["totals"]
    assert (sum(r["gpu_op_time_ns"] for r in truth["steps"])
            + truth["unattributed"]["gpu_op_time_ns"]) == tot["gpu_op_time_ns"]
    assert (sum(r["kernel_time_ns"] for r in truth["steps"])
            + truth["unattributed"]["kernel_time_ns"]) == tot["kernel_time_ns"]
    assert sum(m["gpu_op_time_ns"] for m in truth["modes"].values()) + \
        truth["unattributed"]["gpu_op_time_ns"] == tot["gpu_op_time_ns"]
    # event counts
    ev = doc["traceEvents"]
    assert truth["counts"]["events"] == len(ev)
    by_ph = {}
    for e in ev:
        by_ph[e["ph"]] = by_ph.get(e["ph"], 0) + 1
    assert by_ph == truth["counts"]["by_ph"]
    # flows: one s per launch with GPU work, one f per GPU op, ids match
    s_ids = [e["id"] for e in ev if e["ph"] == "s"]
    f_ids = [e["id"] for e in ev if e["ph"] == "f"]
    assert len(s_ids) == len(set(s_ids)) == tot["n_launches_with_gpu_ops"]
    assert len(f_ids) == tot["n_gpu_ops"] and set(f_ids) == set(s_ids)


def _variants():
    return [
        dict(seed=1, rank=0, world_size=2),
        dict(seed=2, rank=1, world_size=4, grammar="design", with_gpu_user_annotation=True),
        dict(seed=3, variant="2021", n_steps=6),
        dict(seed=4, variant="amd", world_size=8, n_steps=20),
        dict(seed=5, overlap_same_stream=False, n_steps=3),
    ]


@pytest.mark.parametrize("kw", _variants(), ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_generated_trace_matches_truth(kw):
    trace, truth = ks.make_trace(**kw)
    doc = _loads(ks.dumps(trace))
    check_trace_against_truth(doc, truth)
    if kw.get("variant") == "2021":
        assert "baseTimeNanoseconds" not in doc
        assert all(isinstance(e["ts"], int) for e in doc["traceEvents"] if "ts" in e)
        assert any(e.get("tid") == "stream 7" for e in doc["traceEvents"])
    else:
        base = doc["baseTimeNanoseconds"]
        assert base % ks.THREE_MONTHS_NS == 0
        assert all(_ns(e["ts"], None) < 2 ** 53 for e in doc["traceEvents"] if "ts" in e)


def test_deterministic():
    a = ks.dumps(ks.make_trace(11, rank=1, world_size=2)[0])
    b = ks.dumps(ks.make_trace(11, rank=1, world_size=2)[0])
    assert a == b


def test_edge_cases_present_in_default_schedule():
    _, truth = ks.make_trace(0, world_size=2)
    edge = truth["edge_cases"]
    assert edge["straddling_launch_correlations"]
    assert edge["other_thread_launch_correlations"]
    assert edge["nested_steps"]
    assert edge["late_gpu_steps"]
    assert edge["steps_without_gpu_ops"]
    assert edge["unparsable_steps"]
    assert edge["same_stream_overlaps"]
    assert any(g["n_kernels"] == 40 for g in edge["cuda_graphs"])
    assert truth["unattributed"]["n_gpu_ops"] > 0
    modes = {r["mode"] for r in truth["steps"]}
    assert modes == {"prefill", "decode", "mixed", "idle", "verify", "draft", "other"}


def test_ts_text_is_exact_three_decimals():
    trace, _ = ks.make_trace(9, n_steps=2)
    text = ks.dumps(trace)
    values = re.findall(r'"(?:ts|dur)": ([0-9.]+)', text)
    assert values and all(re.fullmatch(r"\d+\.\d{3}", v) for v in values)


def test_usec_carries_exact_ns():
    u = ks.Usec(1_234_567_890_123_456)
    assert u.text == "1234567890123.456" and u.ns == 1_234_567_890_123_456


def test_rank_set_names(tmp_path):
    res = ks.make_rank_set(2, tmp_path, seed=3, n_steps=2, name_tokens="all")
    names = sorted(p.name for p, _ in res)
    assert names == ["1769071195.66-TP-0-DP-0-PP-0-EXTEND.trace.json.gz",
                     "1769071195.66-TP-1-DP-0-PP-0-EXTEND.trace.json.gz"]
    for p, truth in res:
        doc = _loads(gzip.open(p, "rt").read())
        assert doc["distributedInfo"]["rank"] == truth["rank"]
        check_trace_against_truth(doc, truth)


GPU_DIR = FIXTURES / "kineto" / "gpu"
CPU_DIR = FIXTURES / "kineto" / "cpu"


@pytest.mark.parametrize("path", sorted(GPU_DIR.glob("*.trace.json.gz")), ids=lambda p: p.name)
def test_committed_gpu_fixture(path):
    assert path.stat().st_size < 200_000
    truth = json.loads(ks.truth_path(path).read_text())
    assert truth["file"] == path.name
    doc = _loads(gzip.open(path, "rt").read())
    check_trace_against_truth(doc, truth)


def test_committed_gpu_fixtures_are_reproducible(tmp_path):
    ks.write_committed(tmp_path)
    def content(path):  # compare decompressed bytes: zlib builds may differ
        data = path.read_bytes()
        return gzip.decompress(data) if path.name.endswith(".gz") else data

    committed = sorted(p.name for p in GPU_DIR.glob("*.json*"))
    assert committed == sorted(p.name for p in tmp_path.glob("*.json*"))
    for name in committed:
        assert content(tmp_path / name) == content(GPU_DIR / name), name


def test_committed_cpu_fixtures_match_truth():
    truth = json.loads((CPU_DIR / "truth.json").read_text())
    assert truth["files"]
    for name, t in truth["files"].items():
        path = CPU_DIR / name
        assert path.stat().st_size < 150_000
        doc = json.load(gzip.open(path, "rt"))
        steps = sorted((e["ts"], e["name"]) for e in doc["traceEvents"]
                       if e.get("cat") == "user_annotation" and e["name"].startswith("step["))
        assert [n for _, n in steps] == t["step_labels"]
        assert len(steps) == t["n_steps"]
        pst = sorted((e["ts"], e["name"]) for e in doc["traceEvents"]
                     if e.get("cat") == "user_annotation" and e["name"].startswith("ProfilerStep#"))
        assert [n for _, n in pst] == t["profiler_step_ranges"]
        if t["distributed"]:
            assert doc["distributedInfo"]["rank"] == t["distributed"]["rank"]
            assert doc["distributedInfo"]["world_size"] == t["distributed"]["world_size"]
        else:
            assert "distributedInfo" not in doc


def test_big_trace_generator_matches_its_totals(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "make_kineto_trace", ROOT / "benchmarks" / "make_kineto_trace.py")
    big = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(big)
    path = tmp_path / "big.trace.json"
    info = big.generate(path, 2_000_000, seed=1)
    text = path.read_text()
    assert len(text.encode()) == info["bytes_uncompressed"] >= 2_000_000
    doc = _loads(text)
    assert doc["baseTimeNanoseconds"] % ks.THREE_MONTHS_NS == 0
    ev = doc["traceEvents"]
    assert len(ev) == info["n_events"]
    ref = reference_attribution(doc)
    assert ref["total"]["gpu_op_time_ns"] == info["gpu_op_time_ns"]
    assert ref["total"]["kernel_time_ns"] == info["kernel_time_ns"]
    assert ref["unattributed"]["gpu_op_time_ns"] == info["gpu_op_time_unattributed_ns"]
    assert sum(s["gpu_op_time_ns"] for s in ref["steps"].values()) == info["gpu_op_time_in_steps_ns"]
    assert len(ref["labels"]) == info["n_steps"]

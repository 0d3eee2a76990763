"""steps: GPU time per step and mode against the generator's own bookkeeping (never the analyzer's)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import traceconv
from analyzers import steps
from analyzers.step_labels import parse_label
from traceconv.cli import main

ROOT = Path(__file__).resolve().parent.parent
GPU = ROOT / "fixtures" / "kineto" / "gpu"
CPU = ROOT / "fixtures" / "kineto" / "cpu"
TRACES = sorted(GPU.glob("*.trace.json.gz"))


def truth_of(path: Path) -> dict:
    stem = path.name.replace(".trace.json.gz", "").removesuffix(".pt")
    return json.loads((path.parent / f"{stem}.truth.json").read_text())


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.name)
def test_per_step_matches_ground_truth(path):
    truth = truth_of(path)
    ps = steps.per_step(traceconv.read_kineto(path)).sort_values("cpu_start_ns").reset_index(drop=True)
    want = sorted(truth["steps"], key=lambda s: s["cpu_start_ns"])
    assert len(ps) == len(want)
    for got, w in zip(ps.to_dict("records"), want):
        assert got["label"] == w["label"]
        assert got["mode"] == w["mode"]
        assert got["cpu_start_ns"] == w["cpu_start_ns"] and got["cpu_end_ns"] == w["cpu_end_ns"]
        assert got["n_gpu_ops"] == w["n_gpu_ops"] and got["n_kernels"] == w["n_kernels"]
        assert got["kernel_ns"] == w["kernel_time_ns"] and got["gpu_op_ns"] == w["gpu_op_time_ns"]
        assert got["busy_ns"] == w["gpu_busy_ns"]
        if w["n_gpu_ops"]:
            assert got["gpu_start_ns"] == w["gpu_first_start_ns"] and got["gpu_end_ns"] == w["gpu_last_end_ns"]
        for key, value in w["fields"].items():
            assert got[key] == value


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.name)
def test_modes_and_unattributed_add_up_to_the_trace(path):
    truth = truth_of(path)
    pm = steps.per_mode(traceconv.read_kineto(path)).set_index("mode")
    for mode, w in truth["modes"].items():
        assert pm.loc[mode, "kernel_ns"] == pytest.approx(w["kernel_time_ns"], rel=1e-3)
        assert pm.loc[mode, "kernel_ns"] == w["kernel_time_ns"]  # exact, in fact
        assert pm.loc[mode, "steps"] == w["n_steps"]
        assert pm.loc[mode, "busy_ns"] == w["gpu_busy_ns"]
    u = truth["unattributed"]
    assert pm.loc["unattributed", "n_gpu_ops"] == u["n_gpu_ops"]
    assert pm.loc["unattributed", "gpu_op_ns"] == u["gpu_op_time_ns"]
    # every GPU op is counted exactly once
    assert pm["gpu_op_ns"].sum() == truth["totals"]["gpu_op_time_ns"]
    assert pm["kernel_ns"].sum() == truth["totals"]["kernel_time_ns"]


def test_graph_launch_kernels_all_go_to_the_launching_step():
    path = TRACES[0]
    truth = truth_of(path)
    t = traceconv.read_kineto(path)
    ops = steps.attribute(t)
    corr = t.column("slices", "correlation")
    for g in truth["edge_cases"]["cuda_graphs"]:
        sel = ops[corr[ops["op"].to_numpy()] == g["correlation"]]
        assert len(sel) == g["n_kernels"]
        assert set(sel["step"]) == {g["step"]}


def test_cpu_only_traces_report_zero_gpu_time():
    for path in sorted(CPU.glob("*.trace.json.gz")):
        t = traceconv.read_kineto(path)
        ps = steps.per_step(t)
        assert len(ps) > 0
        assert (ps["kernel_ns"] == 0).all() and (ps["n_gpu_ops"] == 0).all()
        assert steps.per_mode(t)["kernel_ns"].sum() == 0


@pytest.mark.parametrize(
    "label, mode, fields",
    [
        ("step[EXTEND bs=15 toks=15360]", "prefill", {"bs": 15, "toks": 15360}),
        ("step[DECODE bs=64]", "decode", {"bs": 64}),
        ("step[MIXED bs=2 c=1 g=1 c_sq=5 c_sk=8 c_sqsq=25 c_sqsk=40 g_sq=1 g_sk=12 g_sqsq=1 g_sqsk=12]", "mixed", {"toks": 6, "c": 1}),
        ("step[IDLE bs=0]", "idle", {"bs": 0}),
        ("step[TARGET_VERIFY bs=2]", "verify", {}),
        ("step[DRAFT_EXTEND_V2 bs=2]", "draft", {}),
        ("step[SPLIT_PREFILL bs=1]", "prefill", {}),
        ("step[DLLM_EXTEND bs=1]", "prefill", {}),
        ("step[PREBUILT bs=2]", "other", {}),
        ("step[decode bs=4]", "decode", {"bs": 4}),
        ("step[prefill bs=2 toks=512]", "prefill", {"toks": 512}),
        ("step[mixed bs=8 ext=256 dec=4]", "mixed", {"ext": 256, "dec": 4}),
        ("step[idle]", "idle", {}),
        ("STEP[Decode BS=3]", "decode", {"bs": 3}),
    ],
)
def test_both_label_grammars(label, mode, fields):
    p = parse_label(label)
    assert p.parsed and p.mode == mode
    assert fields.items() <= p.fields.items()


def test_unparsable_labels_are_reported_not_dropped():
    t = traceconv.read_kineto(TRACES[0])
    count, examples = steps.unparsed_labels(t)
    assert count == 1 and examples == ["step[???]"]


def test_typed_columns():
    ps = steps.per_step(traceconv.read_kineto(TRACES[0]))
    for col in ("kernel_ns", "busy_ns", "n_gpu_ops", "cpu_start_ns", "bs", "toks", "gpu_start_ns"):
        assert ps[col].dtype != object, col
    assert isinstance(ps["mode"].dtype, pd.CategoricalDtype)


def test_several_ranks_and_stragglers():
    pair = sorted(GPU.glob("1775078549.99-TP-*-DECODE.trace.json.gz"))
    t = traceconv.read_trace(pair)
    by_rank = steps.per_mode(t, by_rank=True)
    assert set(by_rank["rank"]) == {"TP0 (DECODE)", "TP1 (DECODE)"}
    s = steps.stragglers(t)
    assert len(s) > 0 and (s["ranks"] == 2).all()
    for p in pair:
        truth = truth_of(p)
        mine = by_rank[by_rank["rank"] == traceconv.read_kineto(p).processes.column("name")[0].as_py()]
        assert mine["kernel_ns"].sum() == truth["totals"]["kernel_time_ns"]


def test_cli_table_csv_json_parquet(tmp_path, capsys):
    path = str(TRACES[0])
    assert main(["steps", path]) == 0
    out = capsys.readouterr().out
    assert "prefill" in out and "unattributed" in out
    assert main(["steps", path, "--by-step", "--format", "csv"]) == 0
    csv = capsys.readouterr().out.splitlines()
    assert csv[0].startswith("rank,") and len(csv) == 1 + len(truth_of(TRACES[0])["steps"])
    assert main(["steps", path, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["mode"] for r in rows} >= {"prefill", "decode", "unattributed"}
    pq = tmp_path / "s.parquet"
    assert main(["-q", "steps", path, "--by-step", "-o", str(pq)]) == 0
    back = pd.read_parquet(pq)
    assert len(back) == len(truth_of(TRACES[0])["steps"]) and back["kernel_ns"].dtype == np.int64


def test_gpu_user_annotation_agreement_is_reported():
    """The generator's gpu_user_annotation spans project the innermost range at launch; for
    ops launched directly inside a step they name that step, so they agree with the rule."""
    path = GPU / "1769071300.5-TP-0.trace.json.gz"
    a = steps.annotation_agreement(traceconv.read_kineto(path))
    assert a["ops_with_annotation"] > 0
    assert a["share"] == 1.0
    assert steps.annotation_agreement(traceconv.read_kineto(TRACES[0])) == {}

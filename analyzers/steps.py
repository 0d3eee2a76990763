"""GPU time per forward step: decode / prefill / mixed / idle / verify / draft / other.

Attribution rule (the nsys ``nvtx_kern_sum`` rule, attribution.md §0): a GPU op (kernel,
memcpy, memset) belongs to the step whose CPU ``step[...]`` range, on the thread that launched
it, contains the whole launching runtime call (``cudaLaunchKernel``, ``cudaGraphLaunch``,
``hipGraphLaunch``, ``cudaMemcpyAsync``, …), joined launch → op by correlation (the trace's
flows). The innermost such step wins, so every op counts exactly once — in a step or in the
unattributed bucket. All kernels of a CUDA-graph launch go to the launch's step.
``gpu_user_annotation`` is not used.

Examples:
    >>> t = traceconv.read_trace("profile_dir/rank0.trace.json.gz")
    >>> steps.per_step(t)            # one row per step
    >>> steps.per_mode(t)            # one row per mode, plus "unattributed"
    >>> steps.top_kernels(t, n=10)   # kernels dominating each mode
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analyzers.intervals import innermost_containing, union_length_by_group
from analyzers.step_labels import MODES, is_step_label, parse_label
from traceconv.model.trace import Trace, TrackKind

GPU_OP_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset", "Kernel", "Memcpy", "Memset", "cuda_graph")  # cuda_graph: nsys whole-graph records
KERNEL_CATEGORIES = ("kernel", "Kernel")
UNATTRIBUTED = "unattributed"


def _frame(trace: Trace) -> pd.DataFrame:
    """Slice columns used here, one row per slice (no copies of names: codes + lookups)."""
    tracks = trace.tracks
    track_proc = trace.column("tracks", "process_id")
    kinds = np.array(tracks.column("kind").to_pylist() or [], dtype=object)
    track = trace.column("slices", "track_id")
    return pd.DataFrame(
        {
            "ts": trace.column("slices", "ts_ns"),
            "dur": trace.column("slices", "dur_ns"),
            "track": track,
            "process": track_proc[track] if len(track) else np.zeros(0, np.int32),
            "gpu": (kinds == TrackKind.GPU_STREAM)[track] if len(track) else np.zeros(0, bool),
            "name": trace.column("slices", "name"),
            "cat": trace.column("slices", "category"),
        }
    )


def _rank_names(trace: Trace) -> list[str]:
    return trace.processes.column("name").to_pylist()


def step_ranges(trace: Trace) -> pd.DataFrame:
    """Every ``step[...]`` range on a CPU thread: rank, index (per rank, in time order), label,
    mode, fields, and whether the label parsed. Nested steps are kept (``depth`` > 0)."""
    names = trace.strings("slices", "name")
    is_step_code = np.array([is_step_label(n) for n in names], bool)
    f = _frame(trace)
    rows = np.flatnonzero(is_step_code[f["name"].to_numpy()] & ~f["gpu"].to_numpy() & (f["dur"].to_numpy() >= 0)) if len(f) else np.zeros(0, int)
    labels = {c: parse_label(names[c]) for c in np.unique(f["name"].to_numpy()[rows]).tolist()}
    d = f.iloc[rows].copy()
    d["row"] = rows
    d["end"] = d["ts"] + d["dur"]
    d = d.sort_values(["process", "ts", "end"], ascending=[True, True, False], kind="stable")
    d["step"] = d.groupby("process").cumcount()
    parsed = [labels[c] for c in d["name"].tolist()]
    rank_names = _rank_names(trace)
    out = pd.DataFrame(
        {
            "rank": pd.Categorical([rank_names[p] for p in d["process"].tolist()]),
            "process": d["process"].to_numpy(np.int32),
            "step": d["step"].to_numpy(np.int64),
            "label": [p.raw for p in parsed],
            "mode": pd.Categorical([p.mode for p in parsed], categories=list(MODES)),
            "mode_token": [p.mode_token for p in parsed],
            "parsed": np.array([p.parsed for p in parsed], bool),
            "cpu_start_ns": d["ts"].to_numpy(np.int64),
            "cpu_end_ns": d["end"].to_numpy(np.int64),
            "track": d["track"].to_numpy(np.int32),
            "row": d["row"].to_numpy(np.int64),
        }
    )
    out["mode_token"] = out["mode_token"].astype("string")
    out["label"] = out["label"].astype("string")
    fields = pd.DataFrame([p.fields for p in parsed], index=out.index)
    for col in fields.columns:
        values = pd.to_numeric(fields[col], errors="coerce")
        if values.notna().sum() == fields[col].notna().sum() and values.notna().any():
            out[col] = values.astype("Int64") if (values.dropna() % 1 == 0).all() else values.astype("Float64")
        else:
            out[col] = fields[col].astype("string")
    out["depth"] = _nesting_depth(out)
    return out


def _nesting_depth(steps: pd.DataFrame) -> np.ndarray:
    """0 for outer steps, 1 for a step inside another step of the same thread, …"""
    depth = np.zeros(len(steps), np.int64)
    for _, g in steps.groupby("track", sort=False):
        ends: list[int] = []
        for i, (s, e) in zip(g.index.tolist(), zip(g["cpu_start_ns"].tolist(), g["cpu_end_ns"].tolist())):
            while ends and ends[-1] <= s:
                ends.pop()
            depth[i] = len(ends)
            ends.append(e)
    return depth


def attribute(trace: Trace) -> pd.DataFrame:
    """One row per GPU op: its launch row and the step it belongs to (``step`` = -1 when
    unattributed, with ``reason``: no_launch | outside_step)."""
    f = _frame(trace)
    cats = trace.strings("slices", "category")
    is_op_cat = np.array([c in GPU_OP_CATEGORIES for c in cats], bool)
    is_kernel_cat = np.array([c in KERNEL_CATEGORIES for c in cats], bool)
    ops = np.flatnonzero(is_op_cat[f["cat"].to_numpy()] & (f["dur"].to_numpy() >= 0)) if len(f) else np.zeros(0, int)
    # launch of each op: the flow into it
    src = trace.column("flows", "src")
    dst = trace.column("flows", "dst")
    launch_of = np.full(trace.num_slices + 1, -1, np.int64)
    launch_of[dst] = src
    launch = launch_of[ops]
    ts = f["ts"].to_numpy()
    end = ts + np.maximum(f["dur"].to_numpy(), 0)
    has_launch = launch >= 0
    l_track = np.where(has_launch, f["track"].to_numpy()[np.maximum(launch, 0)], -1)
    l_start = np.where(has_launch, ts[np.maximum(launch, 0)], 0)
    l_end = np.where(has_launch, end[np.maximum(launch, 0)], 0)
    steps = step_ranges(trace)
    step_idx = _containing_step(steps, l_track, l_start, l_end)
    step_idx[~has_launch] = -1
    out = pd.DataFrame(
        {
            "op": ops,
            "process": f["process"].to_numpy()[ops],
            "ts_ns": ts[ops],
            "end_ns": end[ops],
            "dur_ns": end[ops] - ts[ops],
            "kernel": is_kernel_cat[f["cat"].to_numpy()[ops]],
            "name": f["name"].to_numpy()[ops],
            "launch": launch,
            "launch_ts_ns": l_start,
            "step_row": step_idx,
        }
    )
    srow = steps["step"].to_numpy() if len(steps) else np.zeros(0, np.int64)
    out["step"] = np.where(step_idx >= 0, srow[np.maximum(step_idx, 0)] if len(srow) else -1, -1)
    out["reason"] = pd.Categorical(
        np.where(~has_launch, "no_launch", np.where(step_idx < 0, "outside_step", "")), categories=["", "no_launch", "outside_step"]
    )
    return out


def _containing_step(steps: pd.DataFrame, track: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Index (into `steps`) of the innermost step on `track` containing [start, end], else -1
    (`analyzers.intervals.innermost_containing`)."""
    if not len(steps) or not len(track):
        return np.full(len(track), -1, np.int64)
    return innermost_containing(
        steps["track"].to_numpy(np.int64), steps["cpu_start_ns"].to_numpy(np.int64), steps["cpu_end_ns"].to_numpy(np.int64),
        np.asarray(track, np.int64), np.asarray(start, np.int64), np.asarray(end, np.int64),
    )


def per_step(trace: Trace) -> pd.DataFrame:
    """One row per step (all ranks): label fields, CPU range, GPU projection and time."""
    steps = step_ranges(trace)
    ops = attribute(trace)
    a = ops[ops["step_row"] >= 0]
    g = a.groupby("step_row")
    stats = pd.DataFrame(
        {
            "n_gpu_ops": g.size(),
            "n_kernels": g["kernel"].sum(),
            "kernel_ns": a["dur_ns"].where(a["kernel"], 0).groupby(a["step_row"]).sum(),
            "gpu_op_ns": g["dur_ns"].sum(),
            "gpu_start_ns": g["ts_ns"].min(),
            "gpu_end_ns": g["end_ns"].max(),
            "first_launch_ns": g["launch_ts_ns"].min(),
        }
    )
    busy = union_length_by_group(a["step_row"].to_numpy(), a["ts_ns"].to_numpy(), a["end_ns"].to_numpy())
    out = steps.drop(columns=["track", "row"]).copy()
    idx = np.arange(len(steps))
    joined = stats.astype("Int64").reindex(idx)  # nullable ints: float64 would lose ns at epoch scale
    for col in ("n_gpu_ops", "n_kernels", "kernel_ns", "gpu_op_ns"):
        out[col] = joined[col].fillna(0).to_numpy(np.int64)
    out["busy_ns"] = np.array([busy.get(i, 0) for i in idx], np.int64)
    out["gpu_start_ns"] = joined["gpu_start_ns"].array
    out["gpu_end_ns"] = joined["gpu_end_ns"].array
    out["gpu_span_ns"] = (out["gpu_end_ns"] - out["gpu_start_ns"]).astype("Int64")
    out["cpu_dur_ns"] = out["cpu_end_ns"] - out["cpu_start_ns"]
    out["launch_delay_ns"] = (out["gpu_start_ns"] - joined["first_launch_ns"].array).astype("Int64")
    # idle gap to the next step's first GPU op, per rank (outer steps)
    nxt = out.groupby("process")["gpu_start_ns"].shift(-1)
    out["idle_to_next_ns"] = (nxt - out["gpu_end_ns"]).astype("Int64")
    out["busy_frac"] = (out["busy_ns"] / out["gpu_span_ns"].astype("Float64")).astype("Float64")
    return out


def unattributed(trace: Trace) -> pd.DataFrame:
    """GPU ops outside any step, by reason, with the per-mode columns."""
    ops = attribute(trace)
    u = ops[ops["step_row"] < 0]
    return _summary(u.assign(mode=UNATTRIBUTED), ["mode"], steps_count=None)


def per_mode(trace: Trace, by_rank: bool = False) -> pd.DataFrame:
    """One row per mode (and rank), plus ``unattributed``: steps, kernel time and share, GPU busy
    time, per-step mean/p50/p90/p99, time per token (prefill) / per sequence (decode)."""
    ps = per_step(trace)
    ops = attribute(trace)
    modes = ps["mode"].astype(str).to_numpy()
    ops = ops.assign(mode=np.where(ops["step_row"] >= 0, modes[np.maximum(ops["step_row"].to_numpy(), 0)] if len(modes) else UNATTRIBUTED, UNATTRIBUTED))
    rank_names = _rank_names(trace)
    ops["rank"] = [rank_names[p] for p in ops["process"].tolist()]
    keys = ["rank", "mode"] if by_rank else ["mode"]
    ps = ps.assign(mode=modes)
    out = _summary(ops, keys, ps)
    return out


def _summary(ops: pd.DataFrame, keys: list[str], steps_count) -> pd.DataFrame:
    total = int(ops["dur_ns"].where(ops["kernel"], 0).sum()) if len(ops) else 0
    g = ops.groupby(keys, observed=True, sort=True)
    out = pd.DataFrame(
        {
            "n_gpu_ops": g.size(),
            "n_kernels": g["kernel"].sum(),
            "kernel_ns": ops["dur_ns"].where(ops["kernel"], 0).groupby([ops[k] for k in keys]).sum(),
            "gpu_op_ns": g["dur_ns"].sum(),
        }
    )
    # busy: the union of GPU op intervals per rank (each rank is its own GPU), summed
    group = g.ngroup().to_numpy()
    per_gpu = group * (int(ops["process"].max()) + 1 if len(ops) else 1) + (ops["process"].to_numpy() if len(ops) else 0)
    busy = union_length_by_group(per_gpu, ops["ts_ns"].to_numpy(), ops["end_ns"].to_numpy())
    busy_of_group = np.zeros(g.ngroups, np.int64)
    width = int(ops["process"].max()) + 1 if len(ops) else 1
    for key, value in busy.items():
        busy_of_group[int(key) // width] += value
    out["busy_ns"] = busy_of_group
    out = out.reset_index()
    if isinstance(steps_count, pd.DataFrame) and len(steps_count):
        sg = steps_count.groupby(keys, observed=True)
        per = sg["kernel_ns"]
        stat = pd.DataFrame(
            {
                "steps": sg.size(),
                "mean_ns": per.mean(),
                "p50_ns": per.quantile(0.5),
                "p90_ns": per.quantile(0.9),
                "p99_ns": per.quantile(0.99),
                "toks": sg["toks"].sum(min_count=1) if "toks" in steps_count else np.nan,
                "seqs": sg["bs"].sum(min_count=1) if "bs" in steps_count else np.nan,
            }
        ).reset_index()
        out = stat.merge(out, on=keys, how="outer")
    else:
        out["steps"] = 0
    out["steps"] = out["steps"].fillna(0).astype(np.int64)
    for col in ("n_gpu_ops", "n_kernels", "kernel_ns", "gpu_op_ns", "busy_ns"):
        out[col] = out[col].fillna(0).astype(np.int64)
    out["kernel_share"] = (out["kernel_ns"] / total) if total else 0.0
    if "toks" in out:
        toks = pd.to_numeric(out["toks"], errors="coerce")
        seqs = pd.to_numeric(out.get("seqs"), errors="coerce")
        per_tok = np.where(out["mode"].astype(str) == "prefill", out["kernel_ns"] / toks, np.nan)
        per_seq = np.where(out["mode"].astype(str) == "decode", out["kernel_ns"] / seqs, np.nan)
        out["ns_per_token"] = pd.array(per_tok, dtype="Float64")
        out["ns_per_seq"] = pd.array(per_seq, dtype="Float64")
        out = out.drop(columns=["toks", "seqs"])
    order = {m: i for i, m in enumerate(list(MODES) + [UNATTRIBUTED])}
    out = out.sort_values(keys[:-1] + ["mode"], key=lambda s: s.map(order) if s.name == "mode" else s, kind="stable").reset_index(drop=True)
    return out


def top_kernels(trace: Trace, n: int = 10) -> pd.DataFrame:
    """Per mode, the `n` kernels with the most time, with their share of the mode's kernel time."""
    ps = per_step(trace)
    ops = attribute(trace)
    modes = ps["mode"].astype(str).to_numpy()
    ops = ops[ops["kernel"]]
    mode = np.where(ops["step_row"] >= 0, modes[np.maximum(ops["step_row"].to_numpy(), 0)] if len(modes) else UNATTRIBUTED, UNATTRIBUTED)
    names = trace.strings("slices", "name")
    d = pd.DataFrame({"mode": mode, "kernel": ops["name"].to_numpy(), "dur_ns": ops["dur_ns"].to_numpy()})
    g = d.groupby(["mode", "kernel"]).agg(count=("dur_ns", "size"), kernel_ns=("dur_ns", "sum")).reset_index()
    g["share"] = g["kernel_ns"] / g.groupby("mode")["kernel_ns"].transform("sum")
    g = g.sort_values(["mode", "kernel_ns"], ascending=[True, False]).groupby("mode").head(n)
    g["kernel"] = pd.array([names[c] for c in g["kernel"].tolist()], dtype="string")
    return g.reset_index(drop=True)


def stragglers(trace: Trace) -> pd.DataFrame:
    """For each step index present on several ranks: spread (max − min) across ranks of the
    step's CPU start, GPU end and kernel time, and the slowest rank."""
    ps = per_step(trace)
    ps = ps[ps["depth"] == 0]
    if ps["process"].nunique() < 2:
        return pd.DataFrame(columns=["step", "ranks", "start_spread_ns", "gpu_end_spread_ns", "kernel_spread_ns", "slowest_rank"])
    g = ps.groupby("step")
    out = pd.DataFrame(
        {
            "ranks": g["process"].nunique(),
            "start_spread_ns": g["cpu_start_ns"].max() - g["cpu_start_ns"].min(),
            "gpu_end_spread_ns": (g["gpu_end_ns"].max() - g["gpu_end_ns"].min()).astype("Int64"),
            "kernel_spread_ns": g["kernel_ns"].max() - g["kernel_ns"].min(),
        }
    )
    slow = ps.loc[ps.groupby("step")["kernel_ns"].idxmax(), ["step", "rank"]].set_index("step")["rank"]
    out["slowest_rank"] = slow.astype(str)
    return out[out["ranks"] > 1].reset_index()


def unparsed_labels(trace: Trace) -> tuple[int, list[str]]:
    """How many step labels did not parse, and a few examples."""
    steps = step_ranges(trace)
    bad = steps[~steps["parsed"]]
    return len(bad), bad["label"].drop_duplicates().head(5).tolist()


def trace_steps(trace: Trace) -> pd.DataFrame:
    """Steps for log ↔ trace alignment: step_index, ts_ns, end_ns, mode, iteration
    (from an enclosing ``ProfilerStep#N`` when there is one)."""
    steps = step_ranges(trace)
    steps = steps[steps["depth"] == 0]
    names = trace.strings("slices", "name")
    f = _frame(trace)
    prof_codes = {c: int(n.split("#", 1)[1]) for c, n in enumerate(names) if n.startswith("ProfilerStep#") and n.split("#", 1)[1].isdigit()}
    iteration = pd.array([pd.NA] * len(steps), dtype="Int64")
    if prof_codes and len(steps):
        rows = np.flatnonzero(np.isin(f["name"].to_numpy(), list(prof_codes)))
        p = pd.DataFrame({"ts": f["ts"].to_numpy()[rows], "end": (f["ts"] + f["dur"]).to_numpy()[rows], "track": f["track"].to_numpy()[rows], "it": [prof_codes[c] for c in f["name"].to_numpy()[rows]]})
        p = p.sort_values("ts")
        s = steps[["cpu_start_ns", "track"]].reset_index().sort_values("cpu_start_ns")
        m = pd.merge_asof(s, p, left_on="cpu_start_ns", right_on="ts", by="track", direction="backward")
        ok = m["end"] >= m["cpu_start_ns"]
        iteration = pd.Series(pd.array(np.where(ok, m["it"], np.nan), dtype="Float64").astype("Int64"), index=m["index"]).reindex(steps.index).array
    return pd.DataFrame(
        {
            "rank": steps["rank"].astype(str).to_numpy(),
            "step_index": steps["step"].to_numpy(np.int64),
            "ts_ns": steps["cpu_start_ns"].to_numpy(np.int64),
            "end_ns": steps["cpu_end_ns"].to_numpy(np.int64),
            "mode": steps["mode"].astype(str).to_numpy(),
            "iteration": iteration,
        }
    )


def annotation_agreement(trace: Trace) -> dict:
    """How often Kineto's ``gpu_user_annotation`` (when the trace has it) agrees with the
    launch-based attribution: among GPU ops lying inside a ``gpu_user_annotation`` that is a
    step label on the same stream, the share whose attributed step has that label.

    Returns ``{"ops_with_annotation": n, "agree": k, "share": k / n}`` (empty when absent).
    """
    names = trace.strings("slices", "name")
    cats = trace.strings("slices", "category")
    if "gpu_user_annotation" not in cats:
        return {}
    f = _frame(trace)
    ann_cat = cats.index("gpu_user_annotation")
    step_name = np.array([is_step_label(n) for n in names], bool)
    ann = f[(f["cat"] == ann_cat) & step_name[f["name"].to_numpy()]]
    ops = attribute(trace)
    if not len(ann) or not len(ops):
        return {"ops_with_annotation": 0, "agree": 0, "share": None}
    track = f["track"].to_numpy()
    o = pd.DataFrame({"ts": ops["ts_ns"].to_numpy(), "end": ops["end_ns"].to_numpy(), "track": track[ops["op"].to_numpy()],
                      "step_row": ops["step_row"].to_numpy(), "i": np.arange(len(ops))}).sort_values("ts")
    a = pd.DataFrame({"a_ts": ann["ts"].to_numpy(), "a_end": (ann["ts"] + ann["dur"]).to_numpy(), "track": ann["track"].to_numpy(),
                      "a_name": ann["name"].to_numpy()}).sort_values("a_ts")
    m = pd.merge_asof(o, a, left_on="ts", right_on="a_ts", by="track", direction="backward")
    inside = m["a_end"].notna() & (m["end"] <= m["a_end"])
    steps_table = step_ranges(trace)
    step_name_code = steps_table["label"].astype(str).to_numpy()
    label = np.where(m["step_row"].to_numpy() >= 0, step_name_code[np.maximum(m["step_row"].to_numpy(), 0)] if len(step_name_code) else "", "")
    ann_label = np.array([names[int(c)] if c == c else "" for c in m["a_name"].to_numpy()], dtype=object)
    agree = inside.to_numpy() & (label == ann_label)
    n = int(inside.sum())
    return {"ops_with_annotation": n, "agree": int(agree.sum()), "share": (int(agree.sum()) / n) if n else None}

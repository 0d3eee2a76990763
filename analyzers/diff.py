"""Compare two runs step mode by step mode and kernel by kernel — a regression gate.

Per mode: steps, mean kernel time per step, share of kernel time. Per kernel: calls, mean
duration, time per step (normalised by the run's step count, so runs of different length
compare), and whether it is new or vanished. `regressions` lists what grew beyond a threshold.

Examples:
    >>> d = diff.compare(traceconv.read_trace("baseline/"), traceconv.read_trace("candidate/"))
    >>> d.kernels.head()
    >>> diff.regressions(d, threshold=0.05)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analyzers import steps
from traceconv.model.trace import Trace

MIN_SHARE = 0.005  # kernels below this share of kernel time in both runs are not gated


@dataclass
class RunDiff:
    modes: pd.DataFrame
    kernels: pd.DataFrame


def _kernels(trace: Trace) -> tuple[pd.DataFrame, int]:
    ops = steps.attribute(trace)
    ops = ops[ops["kernel"]]
    names = trace.strings("slices", "name")
    df = pd.DataFrame({"kernel": [names[c] for c in ops["name"].tolist()], "dur_ns": ops["dur_ns"].to_numpy()})
    g = df.groupby("kernel").agg(calls=("dur_ns", "size"), total_ns=("dur_ns", "sum"), mean_ns=("dur_ns", "mean"))
    n_steps = int((steps.step_ranges(trace)["depth"] == 0).sum()) or 1
    g["per_step_ns"] = g["total_ns"] / n_steps
    g["share"] = g["total_ns"] / max(int(g["total_ns"].sum()), 1)
    return g, n_steps


def _change(a: pd.Series, b: pd.Series) -> pd.Series:
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.Series(np.where(a > 0, (b - a) / a, np.where(b > 0, np.inf, 0.0)), index=a.index)


def compare(base: Trace, cand: Trace) -> RunDiff:
    ma = steps.per_mode(base).set_index("mode")
    mb = steps.per_mode(cand).set_index("mode")
    modes = ma[["steps", "mean_ns", "kernel_share"]].join(mb[["steps", "mean_ns", "kernel_share"]], how="outer", suffixes=("_base", "_cand"))
    modes = modes.fillna(0)
    modes["mean_change"] = _change(modes["mean_ns_base"], modes["mean_ns_cand"])
    modes["share_change"] = modes["kernel_share_cand"] - modes["kernel_share_base"]
    ka, _ = _kernels(base)
    kb, _ = _kernels(cand)
    k = ka.join(kb, how="outer", suffixes=("_base", "_cand"))
    status = np.where(k["calls_base"].isna(), "new", np.where(k["calls_cand"].isna(), "vanished", "both"))
    k = k.fillna(0)
    k["status"] = pd.Categorical(status, categories=["both", "new", "vanished"])
    k["mean_change"] = _change(k["mean_ns_base"], k["mean_ns_cand"])
    k["per_step_change"] = _change(k["per_step_ns_base"], k["per_step_ns_cand"])
    k["calls_base"] = k["calls_base"].astype(np.int64)
    k["calls_cand"] = k["calls_cand"].astype(np.int64)
    k = k.sort_values(["per_step_ns_cand", "per_step_ns_base"], ascending=False, kind="stable")
    return RunDiff(modes.reset_index(), k.reset_index())


def regressions(d: RunDiff, threshold: float) -> pd.DataFrame:
    """What grew by more than `threshold` (0.05 = 5%): per-step mode time, kernel mean
    duration or time per step (kernels with at least MIN_SHARE of kernel time), new kernels."""
    rows = []
    for r in d.modes.itertuples(index=False):
        if r.mean_ns_base > 0 and r.mean_change > threshold:
            rows.append(("mode", r.mode, "mean kernel time per step", float(r.mean_ns_base), float(r.mean_ns_cand), float(r.mean_change)))
    k = d.kernels
    big = (k["share_base"] >= MIN_SHARE) | (k["share_cand"] >= MIN_SHARE)
    for r in k[big].itertuples(index=False):
        if r.status == "new":
            rows.append(("kernel", r.kernel, "new kernel", 0.0, float(r.per_step_ns_cand), float("inf")))
            continue
        if r.status == "vanished":
            continue
        for what, a, b, change in (("mean duration", r.mean_ns_base, r.mean_ns_cand, r.mean_change),
                                   ("time per step", r.per_step_ns_base, r.per_step_ns_cand, r.per_step_change)):
            if change > threshold:
                rows.append(("kernel", r.kernel, what, float(a), float(b), float(change)))
    return pd.DataFrame(rows, columns=["kind", "name", "metric", "base", "candidate", "change"])

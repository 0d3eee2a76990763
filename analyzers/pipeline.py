"""Pipeline-parallel (PP) micro-batch view from SGLang's ``run_batch_cpu`` spans: where are the bubbles?

SGLang's PP scheduler wraps each micro-batch launch in a level-4 ``run_batch_cpu`` slice with
attribute ``pp_mb_id`` (PR #23169). It is recorded per *request*, so a micro-batch of k
requests gives k identical spans: they are folded into one interval per
(rank thread, ``pp_mb_id``, start) first (decisions.md, "Pipeline view"); the longest end wins.

Per rank (one thread: ``PP{p}-DP{d}-TP{t}``), over its DP group's pipeline window (first
start to last end of any rank in the group):

* ``busy_ns``: the union of its intervals; ``busy_frac`` = busy / window;
* ``fill_ns``: window start → its first micro-batch; ``drain_ns``: its last → window end;
  ``gap_ns``: idle time between consecutive micro-batches; ``bubble_ns`` = fill + gap + drain
  (= window − busy);
* the gaps split by cause. A micro-batch's input is *ready* when the upstream rank
  (``PP{p-1}``, same DP and TP; for PP0 the last rank, whose output feeds the next decode
  round) ended the same ``pp_mb_id``'s run before (the latest such run that started earlier).
  ``wait_ns``: idle while the input was not there yet (this rank is starved by upstream);
  ``idle_ready_ns``: idle while it was. Every healthy rank has some ``idle_ready_ns`` (hand-off
  latency, scheduling, GPU time not covered by the CPU-side span); ``stall_ns`` is the part of
  each gap above the pipeline group's median hand-off (median ``idle_ready`` per micro-batch),
  i.e. idle time this rank added on its own;
* ``bubble_share``: the rank's share of the stall time in its pipeline group. A rank that
  stalls pushes bubbles onto every other rank (they wait for it), so raw idle time is about
  equal everywhere (and ``bubble_ns`` is, by construction, window − busy); the share says who
  introduced them. ``stalled`` marks the group's largest share when it is at least twice the
  group's median share and above 1 % of the window;
* ``mb_order``: the ``pp_mb_id`` sequence (first 64); ``out_of_order``: how many times the rank
  ran a micro-batch before one that entered the pipeline (at PP0) earlier. PP0 defines the
  order, so it is never out of order itself.

Dumps without PP say so in ``note`` (no ``pp_rank`` > 0, e.g. a generic service), and PP dumps
without ``run_batch_cpu`` tell the user to set ``SGLANG_TRACE_LEVEL=4`` (the default is 3).

Examples:
    >>> from traceconv.readers import read_otel
    >>> from analyzers import pipeline
    >>> view = pipeline.analyze(read_otel(["otel_trace.jsonl"]))
    >>> view.note or view.ranks[["rank", "busy_frac", "bubble_ns", "stall_ns", "bubble_share", "stalled"]]
    >>> pipeline.in_flight(view)   # counter samples: micro-batches in flight per rank
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analyzers.requests import Args, track_ranks
from traceconv.model.trace import INSTANT, Trace

RUN_BATCH = "run_batch_cpu"
MB_KEY = "pp_mb_id"
ORDER_SHOWN = 64
LEVEL_HINT = (
    "run_batch_cpu spans are missing: they are level 4 and SGLang's default trace level is 3. "
    "Set SGLANG_TRACE_LEVEL=4 (or GET /set_trace_level?level=4) and trace again"
)
_NONE = np.iinfo(np.int64).min

INTERVAL_COLUMNS = {
    "rank": "string", "pp_rank": "Int64", "dp_rank": "Int64", "tp_rank": "Int64", "track_id": np.int32,
    "thread": "string", "mb_id": "Int64", "start_ns": np.int64, "end_ns": np.int64, "dur_ns": np.int64,
    "n_requests": np.int64, "gap_ns": np.int64, "ready_ns": "Int64", "wait_ns": np.int64, "idle_ready_ns": np.int64,
    "stall_ns": np.int64, "entry": "Int64", "out_of_order": bool,
}
RANK_COLUMNS = {
    "rank": "string", "pp_rank": "Int64", "dp_rank": "Int64", "tp_rank": "Int64", "thread": "string",
    "n_batches": np.int64, "n_spans": np.int64, "busy_ns": np.int64, "window_ns": np.int64, "fill_ns": np.int64,
    "gap_ns": np.int64, "drain_ns": np.int64, "bubble_ns": np.int64, "busy_frac": np.float64, "max_gap_ns": np.int64,
    "wait_ns": np.int64, "idle_ready_ns": np.int64, "stall_ns": np.int64, "bubble_share": np.float64,
    "stalled": bool, "out_of_order": np.int64, "mb_order": "string",
}


@dataclass
class PipelineView:
    """The result of `analyze`."""

    intervals: pd.DataFrame  # one row per de-duplicated run_batch_cpu interval
    ranks: pd.DataFrame  # one row per rank thread
    note: str | None  # why there is no view (no PP, or trace level too low); None when there is one
    pp_size: int  # distinct PP ranks seen
    duplicates: int  # run_batch_cpu spans folded into another (one per extra request in a micro-batch)
    handoff_ns: dict  # per DP group: median idle-with-input-ready per micro-batch (the stall baseline)

    @property
    def empty(self) -> bool:
        return self.intervals.empty

    @property
    def stalled(self) -> list[str]:
        """Ranks marked as stalled (at most one per DP group)."""
        return self.ranks.loc[self.ranks["stalled"], "rank"].tolist()


def analyze(trace: Trace) -> PipelineView:
    """The PP view of a `Trace` read from OTel span dumps (see the module docstring)."""
    args = Args(trace)
    ranks = track_ranks(trace, args)
    n = trace.num_slices
    pp_known = ranks.pp[ranks.pp >= 0]
    pp_size = int(len(np.unique(pp_known)))
    names = trace.strings("slices", "name") if n else []
    code = names.index(RUN_BATCH) if RUN_BATCH in names else -1
    dur = trace.column("slices", "dur_ns") if n else np.zeros(0, np.int64)
    rows = np.flatnonzero((trace.column("slices", "name") == code) & (dur != INSTANT)) if code >= 0 else np.zeros(0, np.int64)
    if not len(rows):
        if pp_size > 1 or (len(pp_known) and pp_known.max() > 0):
            note = f"PP{pp_size} dump ({', '.join(f'PP{p}' for p in np.unique(pp_known).tolist())}) but " + LEVEL_HINT
        elif "thread_label" in args:
            note = "no pipeline parallelism in this dump: no thread has pp_rank > 0 and there are no run_batch_cpu spans"
        else:
            note = "no pipeline parallelism in this dump: not SGLang scheduler spans (no pp_rank, no run_batch_cpu)"
        return PipelineView(_frame({}, INTERVAL_COLUMNS), _frame({}, RANK_COLUMNS), note, pp_size, 0, {})

    ts = trace.column("slices", "ts_ns")[rows]
    end = ts + dur[rows]
    track = trace.column("slices", "track_id")[rows].astype(np.int64)
    # a span on a non-thread track (an orphan) counts for the thread it stands for
    thread_track = np.where(ranks.thread[track] >= 0, ranks.thread[track], track)
    mb = args.get(MB_KEY).ints()[rows]

    # -- de-duplicate per (rank thread, pp_mb_id, start): one interval per micro-batch launch
    order = np.lexsort((-end, mb, ts, thread_track))
    t_s, ts_s, mb_s, end_s = thread_track[order], ts[order], mb[order], end[order]
    new = np.ones(len(order), bool)
    new[1:] = (t_s[1:] != t_s[:-1]) | (ts_s[1:] != ts_s[:-1]) | (mb_s[1:] != mb_s[:-1])
    group = np.cumsum(new) - 1
    keep = np.flatnonzero(new)
    n_req = np.bincount(group).astype(np.int64)
    iv_track, iv_start, iv_end, iv_mb = t_s[keep], ts_s[keep], end_s[keep], mb_s[keep]
    duplicates = int(len(rows) - len(keep))

    pp = ranks.pp[iv_track]
    dp = ranks.dp[iv_track]
    tp = ranks.tp[iv_track]
    m = len(keep)

    # -- per rank: gaps, busy (union), in time order (already sorted by track, start)
    first = np.ones(m, bool)
    first[1:] = iv_track[1:] != iv_track[:-1]
    prev_end = np.empty(m, np.int64)
    run_max = _segmented_cummax(iv_end, first)
    prev_end[1:] = run_max[:-1]
    prev_end[first] = iv_start[first]
    gap = np.maximum(iv_start - prev_end, 0)
    busy = np.maximum(iv_end - np.maximum(iv_start, prev_end), 0)
    busy[first] = iv_end[first] - iv_start[first]

    # -- readiness: the upstream rank's latest run of the same micro-batch that started earlier
    up_track = _upstream_tracks(np.unique(iv_track), ranks)
    iv_up = up_track.get_many(iv_track)
    ready = _match(iv_up, iv_mb, iv_start, iv_track, iv_mb, iv_start, iv_end, direction="backward")
    up_row = _match(iv_up, iv_mb, iv_start, iv_track, iv_mb, iv_start, np.arange(m), direction="backward")
    has_ready = (ready != _NONE) & ~first
    idle_ready = np.where(has_ready, np.clip(iv_start - np.maximum(prev_end, ready), 0, gap), 0)
    wait = gap - idle_ready

    # -- the stall baseline: per DP group, the median idle-with-input-ready per micro-batch
    dp_key = np.where(dp >= 0, dp, -1)
    stall = np.zeros(m, np.int64)
    handoff = {}
    for d in np.unique(dp_key).tolist():
        sel = (dp_key == d) & has_ready
        base = int(np.median(idle_ready[sel])) if sel.any() else 0
        handoff[d] = base
        g = dp_key == d
        stall[g] = np.maximum(idle_ready[g] - base, 0)

    # -- order: each interval's entry into the pipeline (its PP0 run), chained upstream
    entry = np.full(m, -1, np.int64)
    pp_order = np.argsort(np.where(pp >= 0, pp, 0), kind="stable")
    for p in np.unique(np.where(pp >= 0, pp, 0)).tolist():
        sel = pp_order[np.where(pp >= 0, pp, 0)[pp_order] == p]
        if p == 0 or (pp[sel] < 0).all():
            entry[sel] = sel  # PP0 (or unknown PP) defines the order
        else:
            src = up_row[sel]
            ok = src != _NONE
            entry[sel[ok]] = entry[src[ok]]
    ooo = np.zeros(m, bool)
    prev_entry = _segmented_cummax(np.where(entry >= 0, entry, -1), first)
    ooo[1:] = (entry[1:] >= 0) & (entry[1:] < prev_entry[:-1]) & ~first[1:]

    # unknown ranks (the thread spans carrying pp_rank were lost): name the rank by its track
    proc_names = trace.processes.column("name").to_pylist()
    labels = np.asarray(
        [ranks.label(t) or f"{proc_names[ranks.process[t]]} / {ranks.names[t]}" for t in range(len(ranks.names))], dtype=object
    )
    thread_names = np.asarray(ranks.names, dtype=object)
    intervals = _frame(
        {
            "rank": labels[iv_track],
            "pp_rank": _nullable(pp),
            "dp_rank": _nullable(dp),
            "tp_rank": _nullable(tp),
            "track_id": iv_track.astype(np.int32),
            "thread": thread_names[iv_track],
            "mb_id": pd.arrays.IntegerArray(np.where(iv_mb == _NONE, 0, iv_mb), iv_mb == _NONE),
            "start_ns": iv_start,
            "end_ns": iv_end,
            "dur_ns": iv_end - iv_start,
            "n_requests": n_req,
            "gap_ns": gap,
            "ready_ns": pd.arrays.IntegerArray(np.where(ready == _NONE, 0, ready), ready == _NONE),
            "wait_ns": wait,
            "idle_ready_ns": idle_ready,
            "stall_ns": stall,
            "entry": pd.arrays.IntegerArray(np.maximum(entry, 0), entry < 0),
            "out_of_order": ooo,
        },
        INTERVAL_COLUMNS,
    )
    ranks_df = _rank_table(intervals, busy, dp_key)
    return PipelineView(intervals, ranks_df, None, pp_size, duplicates, handoff)


def _rank_table(iv: pd.DataFrame, busy: np.ndarray, dp_key: np.ndarray) -> pd.DataFrame:
    track = iv["track_id"].to_numpy().astype(np.int64)
    start = iv["start_ns"].to_numpy()
    end = iv["end_ns"].to_numpy()
    tracks, first_idx, inv = np.unique(track, return_index=True, return_inverse=True)
    inv = inv.ravel()
    k = len(tracks)

    def sums(v):
        out = np.zeros(k, np.int64)
        np.add.at(out, inv, v)
        return out

    r_first = np.full(k, np.iinfo(np.int64).max, np.int64)
    r_last = np.full(k, np.iinfo(np.int64).min, np.int64)
    np.minimum.at(r_first, inv, start)
    np.maximum.at(r_last, inv, end)
    r_dp = dp_key[first_idx]
    w_start = np.zeros(k, np.int64)
    w_end = np.zeros(k, np.int64)
    for d in np.unique(r_dp).tolist():
        g = r_dp == d
        w_start[g], w_end[g] = r_first[g].min(), r_last[g].max()
    window = w_end - w_start
    busy_r = sums(busy)
    gap_r = sums(iv["gap_ns"].to_numpy())
    fill = r_first - w_start
    drain = w_end - r_last
    stall_r = sums(iv["stall_ns"].to_numpy())
    max_gap = np.zeros(k, np.int64)
    np.maximum.at(max_gap, inv, iv["gap_ns"].to_numpy())
    share = np.zeros(k, np.float64)
    stalled = np.zeros(k, bool)
    for d in np.unique(r_dp).tolist():
        g = np.flatnonzero(r_dp == d)
        total = stall_r[g].sum()
        if total > 0:
            share[g] = stall_r[g] / total
            top = g[np.argmax(share[g])]
            others = np.delete(share[g], np.argmax(share[g]))
            med = np.median(others) if len(others) else 0.0
            stalled[top] = share[top] >= 2 * med and stall_r[top] > 0.01 * window[top] and len(g) > 1
    mb = iv["mb_id"].to_numpy(dtype=np.float64, na_value=np.nan)
    orders = []
    for i in range(k):
        seq = mb[inv == i][:ORDER_SHOWN + 1]
        text = " ".join("?" if np.isnan(x) else str(int(x)) for x in seq[:ORDER_SHOWN])
        orders.append(text + (" …" if len(seq) > ORDER_SHOWN else ""))
    head = iv.iloc[first_idx]
    df = _frame(
        {
            "rank": head["rank"].to_numpy(dtype=object),
            "pp_rank": head["pp_rank"].array,
            "dp_rank": head["dp_rank"].array,
            "tp_rank": head["tp_rank"].array,
            "thread": head["thread"].to_numpy(dtype=object),
            "n_batches": np.bincount(inv, minlength=k).astype(np.int64),
            "n_spans": sums(iv["n_requests"].to_numpy()),
            "busy_ns": busy_r,
            "window_ns": window,
            "fill_ns": fill,
            "gap_ns": gap_r,
            "drain_ns": drain,
            "bubble_ns": fill + gap_r + drain,
            "busy_frac": np.where(window > 0, busy_r / np.maximum(window, 1), 1.0),
            "max_gap_ns": max_gap,
            "wait_ns": sums(iv["wait_ns"].to_numpy()),
            "idle_ready_ns": sums(iv["idle_ready_ns"].to_numpy()),
            "stall_ns": stall_r,
            "bubble_share": share,
            "stalled": stalled,
            "out_of_order": sums(iv["out_of_order"].to_numpy().astype(np.int64)),
            "mb_order": orders,
        },
        RANK_COLUMNS,
    )
    # rank order everywhere is PP, then DP, then TP (decisions.md)
    key = np.lexsort((df["tp_rank"].fillna(-1).to_numpy(), df["dp_rank"].fillna(-1).to_numpy(), df["pp_rank"].fillna(-1).to_numpy()))
    return df.iloc[key].reset_index(drop=True)


def in_flight(view: PipelineView) -> pd.DataFrame:
    """Counter samples: micro-batches in flight per rank, as SGLang's PP loop holds them.

    A micro-batch is in flight on a rank from its launch there (``run_batch_cpu`` start) until
    the last PP rank of its group finished that round (the end of that rank's first run of
    the same ``pp_mb_id`` starting at or after it); on the last rank, until its own run ends.
    Runs whose round never reaches the last rank in the dump stay in flight to the window end.
    Returns rank, track_id, ts_ns, value (float64), one sample per change, in time order per
    rank, starting at 0 at the window start.
    """
    iv = view.intervals
    cols = {"rank": "string", "track_id": np.int32, "ts_ns": np.int64, "value": np.float64}
    if iv.empty:
        return _frame({}, cols)
    track = iv["track_id"].to_numpy().astype(np.int64)
    start = iv["start_ns"].to_numpy()
    end = iv["end_ns"].to_numpy()
    mb = iv["mb_id"].to_numpy(dtype=np.float64, na_value=np.nan)
    mb_i = np.where(np.isnan(mb), _NONE, mb).astype(np.int64)
    pp = iv["pp_rank"].fillna(-1).to_numpy().astype(np.int64)
    dp = iv["dp_rank"].fillna(-1).to_numpy().astype(np.int64)
    tp = iv["tp_rank"].fillna(-1).to_numpy().astype(np.int64)
    # the last PP rank of each (dp, tp) (falling back to any TP of the group)
    last_track = np.full(len(iv), -1, np.int64)
    for d in np.unique(dp).tolist():
        g = dp == d
        top_pp = pp[g].max()
        for t in np.unique(tp[g]).tolist():
            cand = np.unique(track[g & (pp == top_pp) & (tp == t)])
            if not len(cand):
                cand = np.unique(track[g & (pp == top_pp)])
            last_track[g & (tp == t)] = cand[0]
    done = _match(last_track, mb_i, start, track, mb_i, start, end, direction="forward")
    on_last = last_track == track
    done = np.where(on_last, end, done)
    w_end = np.zeros(len(iv), np.int64)
    w_start = np.zeros(len(iv), np.int64)
    for d in np.unique(dp).tolist():
        g = dp == d
        w_start[g], w_end[g] = start[g].min(), end[g].max()
    done = np.where((done == _NONE) | (mb_i == _NONE) & ~on_last, w_end, done)
    done = np.maximum(done, start)
    ev_track = np.concatenate([track, track, np.unique(track)])
    first_ts = {t: w_start[np.flatnonzero(track == t)[0]] for t in np.unique(track).tolist()}
    ev_ts = np.concatenate([start, done, np.asarray([first_ts[t] for t in np.unique(track).tolist()], np.int64)])
    ev_d = np.concatenate([np.ones(len(iv)), -np.ones(len(iv)), np.zeros(len(np.unique(track)))])
    order = np.lexsort((ev_ts, ev_track))
    ev_track, ev_ts, ev_d = ev_track[order], ev_ts[order], ev_d[order]
    seg = np.ones(len(ev_track), bool)
    seg[1:] = ev_track[1:] != ev_track[:-1]
    csum = np.cumsum(ev_d)
    base = np.maximum.accumulate(np.where(seg, np.arange(len(seg)), 0))
    value = csum - np.where(base > 0, csum[base - 1], 0)
    # one sample per (track, ts): the value after all changes at that ts
    last = np.ones(len(ev_ts), bool)
    last[:-1] = (ev_track[1:] != ev_track[:-1]) | (ev_ts[1:] != ev_ts[:-1])
    label = dict(zip(iv["track_id"].to_numpy().tolist(), iv["rank"].to_numpy(dtype=object).tolist()))
    return _frame(
        {
            "rank": [label[t] for t in ev_track[last].tolist()],
            "track_id": ev_track[last].astype(np.int32),
            "ts_ns": ev_ts[last],
            "value": value[last],
        },
        cols,
    )


# ---- helpers -----------------------------------------------------------------------------------


class _Upstream(dict):
    def get_many(self, tracks: np.ndarray) -> np.ndarray:
        return np.asarray([self.get(t, -1) for t in tracks.tolist()], dtype=np.int64)


def _upstream_tracks(tracks: np.ndarray, ranks) -> _Upstream:
    """Per rank thread: the thread that feeds it (PP p-1, same DP, same TP else the lowest TP;
    for the first PP rank, the last one: its output is the next decode round's input)."""
    info = [(int(t), int(ranks.pp[t]), int(ranks.dp[t]), int(ranks.tp[t])) for t in tracks.tolist()]
    up = _Upstream()
    for t, p, d, tp in info:
        if p < 0:
            continue
        same_dp = [x for x in info if x[2] == d and x[1] >= 0]
        pps = sorted({x[1] for x in same_dp})
        if len(pps) < 2:
            continue
        src_pp = pps[pps.index(p) - 1]  # PP0 wraps around to the last PP rank
        cands = sorted((x for x in same_dp if x[1] == src_pp), key=lambda x: (x[3] != tp, x[3]))
        up[t] = cands[0][0]
    return up


def _match(key_track, key_mb, key_ts, src_track, src_mb, src_ts, src_value, *, direction: str) -> np.ndarray:
    """For each key (track, mb, ts): `src_value` of the source row on that track with the same mb
    whose start is the latest before ts ("backward", strictly) or the earliest at/after ts
    ("forward"). `_NONE` where none."""
    out = np.full(len(key_track), _NONE, np.int64)
    ok = (key_track >= 0) & (key_mb != _NONE)
    if not ok.any() or not len(src_track):
        return out
    # one sortable composite: (track, mb) group id, then time
    pair_src = np.stack([src_track, src_mb], axis=1)
    pair_key = np.stack([key_track[ok], key_mb[ok]], axis=1)
    uniq, src_gid = np.unique(pair_src, axis=0, return_inverse=True)
    src_gid = src_gid.ravel()
    # group id of each key pair (or -1)
    pos = _rows_in(uniq, pair_key)
    order = np.lexsort((src_ts, src_gid))
    g_sorted, t_sorted, v_sorted = src_gid[order], src_ts[order], np.asarray(src_value)[order]
    kg = pos
    kt = key_ts[ok].astype(np.int64)
    res = np.full(len(kg), _NONE, np.int64)
    has = kg >= 0
    # one searchsorted over composite keys (group * span + time): times are sorted within a group
    lo = np.searchsorted(g_sorted, kg[has], side="left")
    hi = np.searchsorted(g_sorted, kg[has], side="right")
    base = int(t_sorted.min())
    span = int(t_sorted.max()) - base + 2
    src_c = g_sorted.astype(np.int64) * span + (t_sorted - base)
    key_c = kg[has].astype(np.int64) * span + (np.clip(kt[has], base - 1, base + span - 1) - base)
    if direction == "backward":
        idx = np.searchsorted(src_c, key_c, side="left") - 1
        valid = idx >= lo
    else:
        idx = np.searchsorted(src_c, key_c, side="left")
        valid = idx < hi
    idx = np.clip(idx, 0, len(src_c) - 1)
    vals = np.where(valid, v_sorted[idx], _NONE)
    res[np.flatnonzero(has)] = vals
    out[np.flatnonzero(ok)] = res
    return out


def _rows_in(uniq: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Index of each row of `rows` in the sorted unique 2-column array `uniq`, -1 if absent."""
    if not len(uniq):
        return np.full(len(rows), -1, np.int64)
    view = lambda a: np.ascontiguousarray(a.astype(np.int64)).view([("a", np.int64), ("b", np.int64)]).ravel()  # noqa: E731
    u, r = view(uniq), view(rows)
    pos = np.clip(np.searchsorted(u, r), 0, len(u) - 1)
    return np.where(u[pos] == r, pos, -1)


def _segmented_cummax(v: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Running max of `v`, restarting where `starts` is True (one segment per rank: few)."""
    out = v.copy()
    bounds = np.flatnonzero(starts).tolist() + [len(v)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        out[a:b] = np.maximum.accumulate(v[a:b])
    return out


def _nullable(v: np.ndarray) -> pd.arrays.IntegerArray:
    return pd.arrays.IntegerArray(np.where(v >= 0, v, 0).astype(np.int64), v < 0)


def _frame(data: dict, types: dict) -> pd.DataFrame:
    if not data:
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in types.items()})
    return pd.DataFrame(data).astype(types)


__all__ = ["PipelineView", "analyze", "in_flight", "RUN_BATCH", "LEVEL_HINT"]

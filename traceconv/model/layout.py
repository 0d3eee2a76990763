"""Lanes: put the slices of each track on sub-tracks ("lanes") where they strictly nest.

Perfetto (and any stack-based viewer) needs the slices of one track to nest strictly. Real
traces break this: concurrent requests on one thread, kernels overlapping by a few µs on one
stream, children that stick out of their parent. Nothing is shifted or shortened here; a slice
that cannot nest goes to another lane of the same track.

Rules:
* a slice whose parent is on the same track and contains it goes on the parent's lane, nested
  under it, when nothing else is open above the parent there;
* otherwise it starts on the lowest lane that is free at its start (adjacent is free);
* an instant goes on its parent's lane, or lane 0.

`layout()` also returns the order of begin/end events that replays each lane's nesting, as a
sequence number used to break timestamp ties.
"""

from __future__ import annotations

import heapq
import os
from collections import Counter
from dataclasses import dataclass

import numpy as np

from traceconv.model.trace import INSTANT

try:
    from traceconv import _lanes
except ImportError:  # (built without a C compiler: the Python loop)
    _lanes = None
if os.environ.get("TRACECONV_NO_C"):
    _lanes = None


@dataclass(frozen=True)
class Layout:
    lane: np.ndarray  # int32 per slice
    begin_seq: np.ndarray  # int32 (int64 beyond 2^29 slices) per slice (instants: their only event)
    end_seq: np.ndarray  # the same per slice (-1 for instants)
    lanes_per_track: np.ndarray  # int32 per track: how many lanes it needs (>= 1)
    not_nested: int  # slices whose same-track parent could not hold them


def layout(ts: np.ndarray, dur: np.ndarray, track: np.ndarray, parent: np.ndarray, n_tracks: int) -> Layout:
    n = ts.shape[0]
    lane = np.zeros(n, dtype=np.int32)
    seq_type = np.int32 if n < (1 << 29) else np.int64  # (sequence numbers < 4n)
    begin_seq = np.zeros(n, dtype=seq_type)
    end_seq = np.full(n, -1, dtype=seq_type)
    lanes_per_track = np.ones(n_tracks, dtype=np.int32)
    stats: Counter = Counter()
    if n == 0:
        return Layout(lane, begin_seq, end_seq, lanes_per_track, 0)

    is_instant = dur == INSTANT
    end = ts + dur
    end[is_instant] = ts[is_instant]
    has_parent = parent >= 0
    same_track_parent = np.zeros(n, dtype=bool)
    same_track_parent[has_parent] = track[parent[has_parent]] == track[has_parent]

    spans = np.flatnonzero(~is_instant)
    if n < (1 << 31):
        spans = spans.astype(np.int32)
    # order: track, start asc, end desc, ancestors before descendants, input order (lexsort
    # is stable)
    neg_end = end[spans]
    np.negative(neg_end, out=neg_end)
    keys = (neg_end, ts[spans], track[spans])
    if has_parent.any():
        keys = (_depth(parent)[spans],) + keys
    order = spans[np.lexsort(keys)]
    del keys, neg_end, spans
    bounds = np.flatnonzero(np.diff(track[order])) + 1
    groups = np.split(order, bounds) if len(order) else []  # (instants only: no groups)

    seq = 0
    for g in groups:
        t = int(track[g[0]])
        if not same_track_parent[g].any():
            ok, b, e = _fast_nesting(ts, end, g, seq)
            if ok:
                begin_seq[g] = b
                end_seq[g] = e
                seq += 2 * len(g)
                continue
        seq, used = _stack_layout(g, ts, end, parent, same_track_parent, lane, begin_seq, end_seq, seq, stats)
        lanes_per_track[t] = max(used, 1)

    inst = np.flatnonzero(is_instant)
    if len(inst):
        p = parent[inst]
        on_parent = same_track_parent[inst] & ~is_instant[np.maximum(p, 0)]
        lane[inst] = np.where(on_parent, lane[np.maximum(p, 0)], 0)
        # right after the parent's begin: strictly between it and anything later on that lane
        begin_seq[inst] = np.where(on_parent, begin_seq[np.maximum(p, 0)], -1)
    # instants get odd sequence numbers so they sort just after their parent's begin (in place:
    # these are the largest arrays here)
    begin_seq *= 2
    begin_seq[inst] += 1
    np.multiply(end_seq, 2, out=end_seq, where=end_seq >= 0)
    return Layout(lane, begin_seq, end_seq, lanes_per_track, stats["not_nested"])


def _depth(parent: np.ndarray, limit: int = 256) -> np.ndarray:
    """Number of ancestors of each row (cycles stop at `limit`)."""
    depth = np.zeros(parent.shape[0], dtype=np.int16)
    anc = parent.copy()
    for _ in range(limit):
        live = anc >= 0
        if not live.any():
            break
        depth[live] += 1
        anc[live] = parent[anc[live]]
    return depth


def _fast_nesting(ts: np.ndarray, end: np.ndarray, g: np.ndarray, seq0: int) -> tuple[bool, np.ndarray, np.ndarray]:
    """If one lane holds all the slices `g` (sorted by start, end desc), their event order.

    Begin events sort by (ts, rank); ends by (ts, before begins, innermost first); a
    zero-length slice ends right after it begins. The sequence is then checked to nest.
    (Temporaries are freed as soon as used: a track can hold millions of slices.)
    """
    m = g.shape[0]
    idx = np.int32 if 2 * m < (1 << 31) else np.int64
    rank = np.arange(m, dtype=idx)
    ev_ts = np.empty(2 * m, np.int64)
    np.take(ts, g, out=ev_ts[:m])
    np.take(end, g, out=ev_ts[m:])
    zero = ev_ts[m:] == ev_ts[:m]
    ev_sub = np.empty(2 * m, idx)
    np.multiply(rank, 2, out=ev_sub[:m])
    np.negative(rank, out=ev_sub[m:])
    ev_sub[m:][zero] = ev_sub[:m][zero] + 1
    ev_cls = np.ones(2 * m, np.int8)
    ev_cls[m:] = zero
    order = np.lexsort((ev_sub, ev_cls, ev_ts)).astype(idx)
    del ev_sub, ev_cls, ev_ts, zero
    is_begin = order < m
    # nesting level of each event: depth before a begin, depth after an end
    step = is_begin.astype(idx)
    step *= 2
    step -= 1
    level = np.cumsum(step, dtype=idx)
    del step
    level -= is_begin
    if level.min() < 0:
        return False, rank, rank
    # per level, in event order, every end must directly follow its own begin
    by_level = np.argsort(level, kind="stable").astype(idx)
    lv = level[by_level]
    del level
    isb = is_begin[by_level]
    sid = order[by_level]
    sid[~isb] -= m
    del by_level
    ends = np.flatnonzero(~isb)
    if len(ends) and ends[0] == 0:
        return False, rank, rank
    if not (isb[ends - 1] & (lv[ends - 1] == lv[ends]) & (sid[ends - 1] == sid[ends])).all():
        return False, rank, rank
    del isb, sid, ends, lv
    pos = np.empty(2 * m, dtype=np.int64 if seq0 + 2 * m >= (1 << 31) else np.int32)
    pos[order] = np.arange(seq0, seq0 + 2 * m, dtype=pos.dtype)
    return True, pos[:m], pos[m:]


def _stack_layout(g, ts, end, parent, same_track_parent, lane, begin_seq, end_seq, seq, stats) -> tuple[int, int]:
    """First-fit lanes with a stack per lane (Python loop over this track's slices, on plain
    lists: the numpy arrays are read and written once; or the same loop in C, `_lanes`)."""
    n = len(g)
    if _lanes is not None:
        stp = same_track_parent[g]
        pg = parent[g]
        by_row = np.argsort(g, kind="stable")
        at = np.searchsorted(g, pg, sorter=by_row).clip(0, max(n - 1, 0))
        pos = by_row[at] if n else at
        par = np.where(stp & (pg >= 0) & (g[pos] == pg), pos, -1).astype(np.int64)
        lane_b, begin_b, end_b, seq, used, not_nested = _lanes.stack_layout(
            np.ascontiguousarray(ts[g], np.int64), np.ascontiguousarray(end[g], np.int64), par, stp.view(np.uint8), seq)
        lane[g] = np.frombuffer(lane_b, np.int32)
        begin_seq[g] = np.frombuffer(begin_b, np.int64)
        end_seq[g] = np.frombuffer(end_b, np.int64)
        stats["not_nested"] += not_nested
        return seq, used
    start_l = ts[g].tolist()
    end_l = end[g].tolist()
    pos_of = dict(zip(g.tolist(), range(n)))
    stp_l = same_track_parent[g].tolist()
    par_l = [pos_of.get(p, -1) if sp else -1 for p, sp in zip(parent[g].tolist(), stp_l)]
    lane_l = [0] * n
    begin_l = [0] * n
    end_seq_l = [-1] * n
    is_open = [False] * n
    stacks: list[list[int]] = []
    busy: list[tuple[int, int]] = []  # (end of the lane's bottom slice, lane)
    free: list[int] = []
    heappush, heappop = heapq.heappush, heapq.heappop
    not_nested = 0
    for i in range(n):
        s = start_l[i]
        e = end_l[i]
        p = par_l[i]
        if p >= 0 or stp_l[i]:
            if p >= 0 and is_open[p] and start_l[p] <= s and e <= end_l[p]:
                st = stacks[lane_l[p]]
                while st[-1] != p and end_l[st[-1]] <= s:
                    j = st.pop()
                    is_open[j] = False
                    end_seq_l[j] = seq
                    seq += 1
                if st[-1] == p:
                    st.append(i)
                    is_open[i] = True
                    lane_l[i] = lane_l[p]
                    begin_l[i] = seq
                    seq += 1
                    continue
            not_nested += 1
        while busy and busy[0][0] <= s:
            heappush(free, heappop(busy)[1])
        if free:
            k = heappop(free)
            st = stacks[k]
            while st:
                j = st.pop()
                is_open[j] = False
                end_seq_l[j] = seq
                seq += 1
        else:
            k = len(stacks)
            st = []
            stacks.append(st)
        st.append(i)
        is_open[i] = True
        lane_l[i] = k
        begin_l[i] = seq
        seq += 1
        heappush(busy, (e, k))
    for st in stacks:
        while st:
            end_seq_l[st.pop()] = seq
            seq += 1
    lane[g] = lane_l
    begin_seq[g] = begin_l
    end_seq[g] = end_seq_l
    stats["not_nested"] += not_nested
    return seq, len(stacks)

"""Interval arithmetic on columns (vectorised): union length of overlapping intervals by group."""

from __future__ import annotations

import numpy as np
import pandas as pd


def union_length_by_group(keys, start: np.ndarray, end: np.ndarray) -> dict:
    """{group key: total length of the union of its [start, end) intervals}.

    Intervals are sorted by start within each group; each adds what extends past the running
    maximum end of those before it (kernels on several streams overlap, so sums overcount).

    Examples:
        >>> union_length_by_group(np.array([0, 0, 1]), np.array([0, 5, 0]), np.array([10, 12, 3]))
        {0: 12, 1: 3}
    """
    if len(start) == 0:
        return {}
    codes, uniques = pd.factorize(pd.Series(keys), sort=False)
    order = np.lexsort((start, codes))
    k, s, e = codes[order], np.asarray(start, np.int64)[order], np.asarray(end, np.int64)[order]
    # running max of ends within each group, in int64 (floats would lose ns at epoch scale)
    running = pd.Series(e).groupby(k).cummax().to_numpy(np.int64)
    prev = np.empty_like(running)
    prev[1:] = running[:-1]
    first = np.ones(len(k), bool)
    first[1:] = k[1:] != k[:-1]
    prev[first] = np.iinfo(np.int64).min
    add = np.maximum(e - np.maximum(s, prev), 0)
    sums = np.zeros(len(uniques), np.int64)
    np.add.at(sums, k, add)
    return {key: int(v) for key, v in zip(uniques.tolist(), sums.tolist())}


def union_length(start: np.ndarray, end: np.ndarray) -> int:
    return union_length_by_group(np.zeros(len(start), np.int64), start, end).get(0, 0)


# ---- containment: which range on the same track holds an interval -------------------------


def _range_order(track: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Ranges by track, start ascending, end descending, then input order (outer first)."""
    return np.lexsort((np.arange(len(track)), -np.asarray(end, np.int64), np.asarray(start, np.int64), np.asarray(track, np.int64)))


def enclosing(track: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Innermost enclosing range of each range on its track (-1 for none), and the tracks
    where some ranges cross instead of nesting.

    Innermost = the container with the latest start, then the earliest end, then the later row
    (identical ranges nest in input order). One pass over a stack per track; ranges that cross
    are skipped while looking down the stack, so the answer stays exact.

    Examples:
        >>> enclosing(np.array([0, 0, 0]), np.array([0, 10, 20]), np.array([100, 50, 30]))[0].tolist()
        [-1, 0, 1]
    """
    n = len(track)
    parent = np.full(n, -1, np.int64)
    if not n:
        return parent, np.zeros(0, np.int64)
    order = _range_order(track, start, end)
    tr = np.asarray(track, np.int64).tolist()
    st = np.asarray(start, np.int64).tolist()
    en = np.asarray(end, np.int64).tolist()
    crossing: set[int] = set()
    stack: list[int] = []
    last = None
    for i in order.tolist():
        t, s, e = tr[i], st[i], en[i]
        if t != last:
            stack = []
            last = t
        while stack and en[stack[-1]] < s:
            stack.pop()
        j = len(stack) - 1
        while j >= 0 and en[stack[j]] < e:
            if en[stack[j]] >= s:
                crossing.add(t)
            j -= 1
        if j >= 0:
            parent[i] = stack[j]
        stack.append(i)
    return parent, np.array(sorted(crossing), np.int64)


def _last_starting(order, r_track, r_start, q_track, q_start) -> np.ndarray:
    """Per query: the range (index) that starts last at or before it on its track, else -1."""
    nr, nq = len(order), len(q_track)
    tracks = np.concatenate([np.asarray(r_track, np.int64)[order], np.asarray(q_track, np.int64)])
    starts = np.concatenate([np.asarray(r_start, np.int64)[order], np.asarray(q_start, np.int64)])
    is_query = np.concatenate([np.zeros(nr, np.int8), np.ones(nq, np.int8)])
    merged = np.lexsort((is_query, starts, tracks))  # stable: ranges keep their order on ties
    pos = np.where(merged < nr, merged, -1)
    last = np.maximum.accumulate(pos)
    out = np.full(nq, -1, np.int64)
    qpos = np.flatnonzero(merged >= nr)
    q = merged[qpos] - nr
    cand = last[qpos]
    ok = cand >= 0
    cand_idx = np.where(ok, order[np.maximum(cand, 0)], -1)
    ok &= np.asarray(r_track, np.int64)[np.maximum(cand_idx, 0)] == np.asarray(q_track, np.int64)[q]
    out[q[ok]] = cand_idx[ok]
    return out


def innermost_containing(r_track, r_start, r_end, q_track, q_start, q_end, parent: np.ndarray | None = None) -> np.ndarray:
    """Per query interval: index of the innermost range on the same track that contains the
    whole [q_start, q_end] (range start <= q_start and range end >= q_end), else -1.

    The last range starting at or before the query, then up its chain of innermost enclosing
    ranges until one contains the query (vectorised per level). Exact also when ranges cross:
    the innermost container of a query that the candidate does not contain encloses the
    candidate, so it is on the chain.

    Examples:
        >>> innermost_containing(np.array([0, 0]), np.array([0, 10]), np.array([100, 20]),
        ...                      np.array([0, 0, 1]), np.array([12, 30, 12]), np.array([15, 40, 15])).tolist()
        [1, 0, -1]
    """
    nq = len(q_track)
    result = np.full(nq, -1, np.int64)
    if not len(r_track) or not nq:
        return result
    r_start = np.asarray(r_start, np.int64)
    r_end = np.asarray(r_end, np.int64)
    q_start = np.asarray(q_start, np.int64)
    q_end = np.asarray(q_end, np.int64)
    if parent is None:
        parent = enclosing(r_track, r_start, r_end)[0]
    cand = _last_starting(_range_order(r_track, r_start, r_end), r_track, r_start, q_track, q_start)
    live = np.flatnonzero(cand >= 0)
    c = cand[live]
    while len(live):
        ok = r_end[c] >= q_end[live]  # start <= query start holds along the chain
        result[live[ok]] = c[ok]
        nxt = parent[c[~ok]]
        keep = nxt >= 0
        live = live[~ok][keep]
        c = nxt[keep]
    return result


def containing_pairs(r_track, r_start, r_end, q_track, q_start, q_end) -> tuple[np.ndarray, np.ndarray]:
    """Every (query, range) pair where the range contains the whole query on the same track
    (the nsys ``nvtx_kern_sum`` rule: a kernel counts for every enclosing range).

    Nested ranges: the innermost container and its chain of enclosing ranges. On tracks where
    ranges cross, the queries are compared with every range of the track (in blocks).
    """
    r_track = np.asarray(r_track, np.int64)
    q_track = np.asarray(q_track, np.int64)
    r_start, r_end = np.asarray(r_start, np.int64), np.asarray(r_end, np.int64)
    q_start, q_end = np.asarray(q_start, np.int64), np.asarray(q_end, np.int64)
    if not len(r_track) or not len(q_track):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    parent, crossing = enclosing(r_track, r_start, r_end)
    qs, rs = [], []
    nested_q = ~np.isin(q_track, crossing)
    inner = innermost_containing(r_track, r_start, r_end, q_track, q_start, q_end, parent)
    live = np.flatnonzero(nested_q & (inner >= 0))
    c = inner[live]
    while len(live):
        qs.append(live)
        rs.append(c)
        c = parent[c]
        keep = c >= 0
        live, c = live[keep], c[keep]
    for t in crossing.tolist():
        rr = np.flatnonzero(r_track == t)
        qq = np.flatnonzero(q_track == t)
        step = max(1, (1 << 22) // max(len(rr), 1))
        for lo in range(0, len(qq), step):
            qb = qq[lo : lo + step]
            hit = (r_start[rr][None, :] <= q_start[qb][:, None]) & (r_end[rr][None, :] >= q_end[qb][:, None])
            i, j = np.nonzero(hit)
            qs.append(qb[i])
            rs.append(rr[j])
    if not qs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(qs), np.concatenate(rs)

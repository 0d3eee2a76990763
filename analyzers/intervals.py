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

"""Process and thread ids for viewers that key threads by (pid, tid)."""

from __future__ import annotations

from collections import Counter


def unique_ids(ids: list[int], base: int, groups: list[int] | None = None) -> list[int]:
    """Keep ids that are positive, below `base` and unique (within their group, if given);
    give the others fresh ones from `base`.

    Ranks merged from several hosts often share pids (GPU "processes" are device indices):
    each must stay a distinct process. Thread ids need only be unique within their process.
    """
    keys = list(zip(groups, ids)) if groups is not None else [(0, i) for i in ids]
    counts = Counter(keys)
    out = []
    fresh = base
    for key, i in zip(keys, ids):
        if 0 < i < base and counts[key] == 1:
            out.append(i)
        else:
            out.append(fresh)
            fresh += 1
    return out

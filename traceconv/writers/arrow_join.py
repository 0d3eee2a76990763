"""`protowire.append_tails` by Arrow's ``binary_join_element_wise``: a memcpy per piece instead of
numpy's work per byte. The Perfetto writer uses it where the tails are long — the args JSON of
Chrome/Kineto events, ~100-600 bytes each — and where Arrow is loaded already (the JSON readers
use it); OTel traces, whose tails are short, are joined with numpy and never load Arrow.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traceconv.writers.protowire import Pieces
from traceconv.writers.protowire import append_tails as numpy_append_tails


def append_tails(head: tuple[np.ndarray, np.ndarray], tails: list[Pieces]) -> np.ndarray:
    """The bytes of `protowire.append_tails(head, tails)`."""
    data, offsets = head
    arrays = [_large_binary(np.ascontiguousarray(offsets, np.int64), data)]
    for t in tails:
        rows = _rows(t)
        if rows is None:  # (pieces that overlap: numpy's way)
            return numpy_append_tails(head, tails)[0]
        arrays.append(rows)
    joined = pc.binary_join_element_wise(*arrays, pa.scalar(b"", pa.large_binary()), null_handling="skip")
    size = int(offsets[-1] + sum(int(t.length.sum()) for t in tails))
    return np.frombuffer(joined.buffers()[2], np.uint8, size)


def _large_binary(offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    return pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _rows(p: Pieces) -> pa.Array | None:
    """Row i of `p` as element i of an Arrow array, the bytes taken once: the pieces, sorted by
    where they start, become every other element of an array over `p.data` (the gaps between
    them the others). None if two pieces overlap."""
    m = len(p.length)
    if m and np.array_equal(p.start[1:], p.start[:-1] + p.length[:-1]):  # (already row after row: no copy)
        offsets = np.empty(m + 1, np.int64)
        offsets[0] = p.start[0]
        np.cumsum(p.length, out=offsets[1:])
        offsets[1:] += p.start[0]
        return _large_binary(offsets, p.data)
    start = np.where(p.length > 0, p.start, 0).astype(np.int64)
    order = np.lexsort((p.length, start))  # (the empty ones, all at 0, before one that starts there)
    bounds = np.empty(2 * m, np.int64)
    bounds[0::2] = start[order]
    bounds[1::2] = bounds[0::2] + p.length[order]
    if m and (np.diff(bounds) < 0).any():
        return None
    if not m:
        return pa.array([], pa.large_binary())
    element = np.empty(m, np.int64)
    element[order] = 2 * np.arange(m)
    return pc.take(_large_binary(bounds, p.data), pa.array(element))

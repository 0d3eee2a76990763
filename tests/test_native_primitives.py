"""The optional C primitives (`traceconv._wire`, `traceconv._lanes`) against the numpy / Python
code they replace: the same bytes (varints, joins, debug annotations, whole Perfetto traces),
the same lanes. Skipped where they were not built."""

from __future__ import annotations

import io
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_properties import span_traces, traces
from traceconv.model import layout as layout_mod
from traceconv.model.trace import INSTANT
from traceconv.writers import protowire as pw
from traceconv.writers.perfetto import write_perfetto

try:
    from traceconv import _lanes, _wire
except ImportError:  # pragma: no cover - a build without a C compiler
    _lanes = _wire = None

needs_c = pytest.mark.skipif(_wire is None or _lanes is None, reason="C accelerators not built (no C compiler at install)")


def _rows(data: np.ndarray, offsets: np.ndarray) -> list[bytes]:
    return [data[offsets[i] : offsets[i + 1]].tobytes() for i in range(len(offsets) - 1)]


@needs_c
@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 60), bits=st.integers(1, 64), masked=st.booleans())
def test_varint_and_join_match_numpy(seed, n, bits, masked):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2**63, n, dtype=np.uint64) >> np.uint64(64 - bits)
    if n:
        values[rng.random(n) < 0.1] = np.uint64(2**64 - 1)
    mask = rng.random(n) < 0.6 if masked else None
    lengths = rng.integers(0, 40, n) * (rng.random(n) < 0.8)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    blob = rng.integers(0, 256, int(offsets[-1]), dtype=np.uint8)
    rows = rng.permutation(n) if n else np.zeros(0, np.int64)
    out = {}
    for impl in (None, _wire):
        with mock.patch.object(pw, "_wire", impl):
            v = pw.varint(values, mask)
            pieces = [pw.Pieces.constant(b"\x08", n, mask), v, pw.fixed64(values, mask), pw.Pieces(blob, offsets[:-1][rows], lengths[rows])]
            got_v = [v.data[v.start[i] : v.start[i] + v.length[i]].tobytes() for i in range(n)]
            out[impl is None] = (got_v, _rows(*pw.concat(pieces)), _rows(*pw.append_tails(pw.pack_dense(pieces[:3]), pieces[3:])))
    assert out[True] == out[False]
    want = [pw.encode_varint(int(x)) if mask is None or mask[i] else b"" for i, x in enumerate(values.tolist())]
    assert out[False][0] == want


@needs_c
def test_join_refuses_pieces_outside_their_bytes():
    data = np.zeros(4, np.uint8)
    with pytest.raises(ValueError, match="outside"):
        _wire.join([(data, np.array([2], np.int64), np.array([3], np.int64))])
    with pytest.raises(ValueError, match="one start and one length"):
        _wire.join([(data, np.array([0, 1], np.int64), np.array([1], np.int64))])
    assert _wire.join([]) == (b"", b"\x00" * 8)


@st.composite
def tracks(draw):
    """Slices on a few tracks: nested, overlapping, zero-length, instants, parents on the same
    track or another, parents that do not contain their child."""
    n = draw(st.integers(1, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ts = rng.integers(0, 50, n).astype(np.int64) * draw(st.sampled_from([1, 10]))
    dur = rng.integers(0, 30, n).astype(np.int64)
    dur[rng.random(n) < 0.1] = INSTANT
    track = rng.integers(0, draw(st.integers(1, 3)), n).astype(np.int32)
    parent = np.where(rng.random(n) < 0.6, rng.integers(0, n, n), -1).astype(np.int64)
    parent[parent == np.arange(n)] = -1
    parent = np.where(parent < np.arange(n), parent, -1)  # (no cycles)
    return ts, dur, track, parent, int(track.max()) + 1


@needs_c
@settings(max_examples=300, deadline=None)
@given(case=tracks())
def test_c_lanes_match_the_python_loop(case):
    ts, dur, track, parent, n_tracks = case
    got = {}
    for impl in (None, _lanes):
        with mock.patch.object(layout_mod, "_lanes", impl):
            lay = layout_mod.layout(ts, dur, track, parent, n_tracks)
        got[impl is None] = (lay.lane.tolist(), lay.begin_seq.tolist(), lay.end_seq.tolist(), lay.lanes_per_track.tolist(), lay.not_nested)
    assert got[True] == got[False]


@needs_c
def test_stack_layout_refuses_a_parent_out_of_range():
    z = np.zeros(2, np.int64)
    with pytest.raises(ValueError, match="parent"):
        _lanes.stack_layout(z, z, np.array([0, 5], np.int64), np.ones(2, np.uint8), 0)


def _written(trace, impl, write=write_perfetto) -> bytes:
    """What `write` (the Perfetto writer unless said) writes with `_wire` set to `impl`."""
    buf = io.BytesIO()
    with mock.patch.object(pw, "_wire", impl):
        write(trace, buf)
    return buf.getvalue()


@needs_c
@settings(max_examples=150, deadline=None)
@given(trace=span_traces())
def test_c_annotations_write_the_numpy_bytes(trace):
    assert _written(trace, _wire) == _written(trace, None)


@needs_c
@settings(max_examples=60, deadline=None)
@given(case=traces())
def test_c_writer_writes_the_numpy_bytes(case):
    trace, _ = case
    assert _written(trace, _wire) == _written(trace, None)


@needs_c
def test_annotations_refuse_rows_outside_their_columns():
    z8, one = np.zeros(1, np.int8), np.array([0], np.int64)
    with pytest.raises(ValueError, match="outside"):
        _wire.span_annotations(np.array([3], np.int64), np.ones(1, np.int8), one, one, one, one, z8, z8, (1, 2, 3, 4, 5), 1, 5, 7, 2)
    args = (z8, np.zeros(1, np.int32), one, np.zeros(1), np.zeros(1, np.int32), None, None, None)
    with pytest.raises(ValueError, match="outside"):
        _wire.arg_annotations(np.array([0], np.int64), np.array([0], np.int64), np.array([2], np.int64), None, *args)
    with pytest.raises(ValueError, match="JSON"):
        _wire.arg_annotations(np.array([0], np.int64), one, np.array([1], np.int64), None, np.full(1, 4, np.int8), *args[1:])


@needs_c
@settings(max_examples=60, deadline=None)
@given(trace=st.one_of(traces().map(lambda c: c[0]), span_traces()))
def test_c_join_writes_the_numpy_chrome_json(trace):
    from traceconv.writers.chrome_json import write_chrome_json

    assert _written(trace, _wire, write_chrome_json) == _written(trace, None, write_chrome_json)

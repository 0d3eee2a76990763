"""The vectorised wire encoder against a plain per-row join, and the model's two table forms
(numpy `Columns`, Arrow) against each other."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from traceconv.model.trace import TABLES, Columns, Trace, TraceBuilder, TrackKind
from traceconv.writers import arrow_join
from traceconv.writers import protowire as pw


def _row(p: pw.Pieces, i: int) -> bytes:
    start = int(p.start[i])
    return p.data[start : start + int(p.length[i])].tobytes()


@st.composite
def pieces(draw) -> tuple[int, list[pw.Pieces]]:
    n = draw(st.integers(0, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    out = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["const", "varint", "fixed64", "ragged", "shuffled"]))
        mask = rng.random(n) < 0.7 if draw(st.booleans()) else None
        if kind == "const":
            out.append(pw.Pieces.constant(bytes(rng.integers(0, 256, draw(st.integers(1, 5)), dtype=np.uint8)), n, mask))
        elif kind == "varint":
            bits = draw(st.integers(1, 64))
            out.append(pw.varint(rng.integers(0, 2**63, n, dtype=np.uint64) >> np.uint64(64 - bits), mask))
        elif kind == "fixed64":
            out.append(pw.fixed64(rng.integers(0, 2**63, n, dtype=np.uint64), mask))
        else:
            lengths = rng.integers(0, 30, n) * (rng.random(n) < 0.8)
            offsets = np.zeros(n + 1, np.int64)
            np.cumsum(lengths, out=offsets[1:])
            data = rng.integers(0, 256, int(offsets[-1]) + 3, dtype=np.uint8)
            p = pw.Pieces.ragged(data, offsets)
            if kind == "shuffled":  # (rows not in the order of their bytes)
                rows = rng.permutation(n) if n else np.zeros(0, np.int64)
                p = pw.Pieces(p.data, p.start[rows], p.length[rows] if mask is None else np.where(mask, p.length[rows], 0))
            out.append(p)
    return n, out


@settings(max_examples=300, deadline=None)
@given(case=pieces())
def test_concat_and_append_tails_join_each_rows_pieces(case):
    n, ps = case
    want = [b"".join(_row(p, i) for p in ps) for i in range(n)]
    data, offsets = pw.concat(ps)
    assert [data[offsets[i] : offsets[i + 1]].tobytes() for i in range(n)] == want
    dense = [p for p in ps if p.width is not None] or [pw.Pieces.constant(b"", n)]
    tails = [p for p in ps if p.width is None]
    data, offsets = pw.append_tails(pw.pack_dense(dense), tails)
    want = [b"".join(_row(p, i) for p in dense + tails) for i in range(n)]
    assert [data[offsets[i] : offsets[i + 1]].tobytes() for i in range(n)] == want
    assert len(data) == sum(map(len, want))
    assert arrow_join.append_tails(pw.pack_dense(dense), tails).tobytes() == data.tobytes()


def test_varint_matches_the_scalar_encoder():
    values = np.array([0, 1, 127, 128, 300, 2**32, 2**63 - 1, 2**64 - 1], np.uint64)
    p = pw.varint(values)
    assert [_row(p, i) for i in range(len(values))] == [pw.encode_varint(int(v)) for v in values]
    small = pw.varint(np.array([0, 5, 127], np.uint64), np.array([True, False, True]))
    assert [_row(small, i) for i in range(3)] == [b"\x00", b"", b"\x7f"]


def _sample_trace() -> Trace:
    b = TraceBuilder(span_columns=True)
    p = b.add_process(42, "Scheduler", ["PP0", "DP1"], 1)
    b.add_process(43, "Detokenizer", ["DP0", "TP1"])
    t0 = b.add_track(p, 7, "Scheduler-PP0-TP0")
    t1 = b.add_track(p, 8, "stream 7", TrackKind.GPU_STREAM, 2)
    for k in range(5):
        row = b.add_slice(1000 * k, 500, t0 if k % 2 else t1, f"s{k % 3}", "cat" if k else "", parent=0 if k else -1)
        b.add_arg(row, "x", k)
        b.add_arg(row, "y", "text" if k % 2 else None)
        b.add_arg(row, "z", [k, {"a": 1.5}])
        for key, col in b.span.items():
            col.append(k + 1 if key != "span_kind" else 1)
    b.add_flow(9, 0, 3)
    b.add_counter(t0, 5, 2.5)
    b.args_json = bytearray(b'{"a":1}{}{"b":[2]}')
    b.args_end.extend([7, 9, 9, 17, 17])
    return b.build()


def test_numpy_tables_read_the_same_as_their_arrow_tables():
    lazy = _sample_trace()
    assert all(isinstance(lazy._tables[name], Columns) for name in TABLES)
    arrow = Trace(*(getattr(_sample_trace(), name) for name in TABLES))  # (each made into Arrow)
    assert not any(isinstance(arrow._tables[name], Columns) for name in TABLES)
    for name in TABLES:
        assert lazy.num_rows(name) == arrow.num_rows(name) == getattr(arrow, name).num_rows
        assert lazy._tables[name].column_names == getattr(arrow, name).column_names
        for col in getattr(arrow, name).column_names:
            assert lazy.has_column(name, col)
            if col == "args_json":
                (lo, ld), (ao, ad) = lazy.binary_chunks(name, col)[0], arrow.binary_chunks(name, col)[0]
                assert np.array_equal(lo, ao) and ld[: lo[-1]].tobytes() == ad[: ao[-1]].tobytes()
                continue
            got, want = lazy.column(name, col), arrow.column(name, col)
            assert got.dtype == want.dtype and [list(v) if col == "labels" else v for v in got.tolist()] == [
                list(v) if col == "labels" else v for v in want.tolist()], (name, col)
        assert lazy.rows(name) == arrow.rows(name) if name in ("processes", "tracks") else True
    for name, col in (("slices", "name"), ("slices", "category"), ("args", "key"), ("args", "string_value")):
        assert lazy.strings(name, col) == arrow.strings(name, col)
    assert not lazy.has_column("slices", "nope")
    # asking for the Arrow table makes it once, and it is what the numpy columns said
    assert lazy.slices is lazy.slices
    assert lazy.slices.equals(arrow.slices) and lazy.args.equals(arrow.args)


def test_replace_keeps_the_other_tables():
    t = _sample_trace()
    t2 = t.replace(counters=t.counters.slice(0, 0))
    assert t2.num_rows("counters") == 0 and t2.num_slices == t.num_slices and t2.stats is t.stats

"""Property tests (hypothesis): random valid traces survive write → read exactly, random OTLP
documents are read span for span, and mutated bytes never make a reader raise anything but
`TraceconvError` (nor the CLI print a traceback).

The default budget is small (the whole file runs in well under a minute); for a long run:
``TRACECONV_PROPERTY_SCALE=50 python -m pytest tests/test_properties.py``.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.perfetto_check import decode
from traceconv.errors import TraceconvError
from traceconv.model.trace import INSTANT, ArgKind, TraceBuilder, TrackKind
from traceconv.writers import write_trace

SCALE = float(os.environ.get("TRACECONV_PROPERTY_SCALE", "1"))  # e.g. 50 for a long run


def budget(n: int) -> settings:
    """`n` examples (times TRACECONV_PROPERTY_SCALE), no deadline: inputs vary a lot in size."""
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])

ROOT = Path(__file__).resolve().parent.parent
EPOCH = 1_767_225_600_000_000_000  # 2026-01-01 in ns: big timestamps, as real traces have
INT64 = st.integers(-(1 << 63), (1 << 63) - 1)

# ---- random valid traces ----------------------------------------------------------------------

json_leaf = st.one_of(st.none(), st.booleans(), INT64, st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)


@st.composite
def arg_values(draw):
    """(kind, python value) for every `ArgKind`."""
    kind = draw(st.sampled_from(list(ArgKind)))
    if kind == ArgKind.STRING:
        return kind, draw(st.text(max_size=12))
    if kind == ArgKind.INT:
        return kind, draw(INT64)
    if kind == ArgKind.UINT:
        return kind, draw(st.integers(1 << 63, (1 << 64) - 1))
    if kind == ArgKind.DOUBLE:
        return kind, draw(st.floats(allow_nan=False, allow_infinity=False))
    if kind == ArgKind.BOOL:
        return kind, draw(st.booleans())
    return kind, draw(st.lists(json_value, min_size=1, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=5), json_value, min_size=1, max_size=3))


@st.composite
def traces(draw):
    """A `TraceBuilder` trace: tracks of every kind, slices nested (children inside parents)
    and overlapping (siblings that cross), instants, args of every kind, flows, counters.

    Returns (trace, expected) where expected holds what a reader should give back."""
    b = TraceBuilder()
    n_proc = draw(st.integers(1, 3))
    tracks = []
    counter_tracks = []
    for p in range(n_proc):
        proc = b.add_process(draw(st.integers(0, 1 << 30)), f"proc{p}", [f"label{p}"] * draw(st.integers(0, 2)), sort_index=draw(st.integers(-5, 5)))
        for k in range(draw(st.integers(1, 3))):
            kind = draw(st.sampled_from([TrackKind.THREAD, TrackKind.GPU_STREAM, TrackKind.TRACK]))
            tracks.append(b.add_track(proc, draw(st.integers(0, 1 << 20)), f"p{p}t{k}", kind, sort_index=draw(st.integers(-3, 3))))
        if draw(st.booleans()):
            counter_tracks.append(b.add_track(proc, 0, f"p{p}counter", TrackKind.COUNTER, sort_index=100))
    rows = []  # (track, ts, dur, parent)
    for _ in range(draw(st.integers(1, 14))):
        track = draw(st.sampled_from(tracks))
        same_track = [i for i, r in enumerate(rows) if r[0] == track and r[2] > 0]
        if same_track and draw(st.booleans()):  # a child inside (or sticking out of) a parent
            parent = draw(st.sampled_from(same_track))
            _, pts, pdur, _ = rows[parent]
            start = pts + draw(st.integers(0, pdur))
            inside = draw(st.integers(0, 4)) > 0
            dur = draw(st.integers(0, pts + pdur - start)) if inside else draw(st.integers(0, 3 * pdur + 1))
        else:
            parent = -1
            start = EPOCH + draw(st.integers(0, 5000))
            dur = draw(st.integers(0, 3000))
        if draw(st.integers(0, 6)) == 0:
            dur = INSTANT
        rows.append((track, start, dur, parent))
    expected_slices = []
    for i, (track, ts, dur, parent) in enumerate(rows):
        cat = draw(st.sampled_from(["", "cat_a", "cat_b"]))
        b.add_slice(ts, dur, track, f"s{i}", cat, parent=parent)
        args = {}
        for k in range(draw(st.integers(0, 3))):
            kind, value = draw(arg_values())
            key = f"k{k}_{int(kind)}"
            if kind == ArgKind.UINT:
                b.a_owner.append(i)
                b.a_key.append(b.arg_keys.code(key))
                b.a_kind.append(ArgKind.UINT)
                b.a_int.append(value - (1 << 64))
                b.a_dbl.append(0.0)
                b.a_str.append(-1)
            else:
                b.add_arg(i, key, value)
            args[key] = (kind, value)
        expected_slices.append((track, i, cat, ts, dur, args))
    flows = []
    if len(rows) > 1:
        for _ in range(draw(st.integers(0, 3))):
            src, dst = draw(st.permutations(range(len(rows))).map(lambda p: p[:2]))
            fid = draw(st.integers(1, (1 << 64) - 1))
            assume(fid not in {f[0] for f in flows})
            b.add_flow(fid, src, dst)
            flows.append((fid, src, dst))
    counters = []
    for t in counter_tracks:
        for _ in range(draw(st.integers(1, 4))):
            ts = EPOCH + draw(st.integers(0, 5000))
            v = draw(st.floats(allow_nan=False, allow_infinity=False, width=64))
            b.add_counter(t, ts, v)
            counters.append((b.tracks[t][2], ts, v))
    trace = b.build().validate()
    return trace, {"rows": rows, "slices": expected_slices, "flows": flows, "counters": counters, "track_names": [t[2] for t in b.tracks]}


@st.composite
def span_traces(draw):
    """OTel-like slices (span columns: ids, 0 for none; kinds and status codes beyond their
    names), args of every kind added out of slice order, some owned by no slice."""
    b = TraceBuilder(span_columns=True)
    track = b.add_track(b.add_process(1, "p"), 1, "t")
    n = draw(st.integers(0, 25))
    u64 = st.one_of(st.just(0), st.integers(1, 2**64 - 1))
    for i in range(n):
        b.add_slice(EPOCH + i * 10, draw(st.sampled_from([INSTANT, 0, 5, 100])), track, f"s{i % 3}", draw(st.sampled_from(["", "c"])))
        for col in ("trace_id_hi", "trace_id_lo", "span_id", "parent_span_id"):
            b.span[col].append(draw(u64))
        b.span["span_kind"].append(draw(st.integers(-3, 9)))
        b.span["status_code"].append(draw(st.integers(-2, 5)))
    owners = draw(st.lists(st.integers(-1 if n else 0, n - 1), max_size=40)) if n else []
    for k, owner in enumerate(owners):
        kind, value = draw(arg_values())
        if kind == ArgKind.UINT:
            value -= 1 << 64  # (kept as its bit pattern, as the readers do)
            b.a_owner.append(owner)
            b.a_key.append(b.arg_keys.code(f"u{k}"))
            b.a_kind.append(ArgKind.UINT)
            b.a_int.append(value)
            b.a_dbl.append(0.0)
            b.a_str.append(-1)
        else:
            b.add_arg(owner, f"k{k % 5}", value)
    return b.build()


def _perfetto_value(kind: ArgKind, value):
    """What a debug annotation of this arg decodes to (tests/perfetto_check._value)."""
    if kind == ArgKind.UINT:
        return value
    if kind != ArgKind.JSON:
        return value
    return _nested(value)


def _nested(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v if -(1 << 63) <= v < (1 << 63) else str(v)
    if isinstance(v, list):
        return [_nested(x) for x in v] if v else "[]"
    if isinstance(v, dict):
        return {str(k): _nested(x) for k, x in v.items()} if v else "{}"
    if v is None:
        return "null"
    return v


@budget(60)
@given(case=traces())
def test_perfetto_round_trip_is_exact(case):
    trace, want = case
    buf = io.BytesIO()
    counts = write_trace(trace, buf, "perfetto")
    d = decode(buf.getvalue())  # also replays nesting the way trace processor does
    got = {s.name: s for s in d.slices}
    assert len(got) == len(d.slices) == len(want["rows"])
    names = want["track_names"]
    for name, i, cat, ts, dur, args in want["slices"]:
        s = got[f"s{i}"]
        track = want["rows"][i][0]
        assert d.thread_of(s) == names[track]
        assert (s.category, s.start, s.instant) == (cat, ts, dur == INSTANT)
        assert s.end == ts + max(dur, 0)
        assert s.args == {k: _perfetto_value(kind, v) for k, (kind, v) in args.items()}
    got_flows = Counter(frozenset((a.name, b.name)) for a, b in d.flows())
    assert got_flows == Counter(frozenset((f"s{src}", f"s{dst}")) for _, src, dst in want["flows"])
    assert counts["flows"] == len(want["flows"])
    got_counters = Counter((d.track_name(u), ts, v) for u, v, ts in d.counters)
    assert got_counters == Counter(want["counters"])


@budget(60)
@given(case=st.one_of(traces().map(lambda c: c[0]), span_traces()))
def test_chrome_json_args_as_a_dict_would_write_them(case, monkeypatch):
    """The JSON writer builds args from byte pieces; a slice with odd args is written from a
    dict instead. Forcing every slice through the dict gives the same bytes."""
    from traceconv.writers import chrome_json

    fast = io.BytesIO()
    chrome_json.write_chrome_json(case, fast)
    real_init = chrome_json._ArgsText.__init__

    def all_odd(self, trace):
        real_init(self, trace)
        self.odd[:] = True

    with monkeypatch.context() as m:
        m.setattr(chrome_json._ArgsText, "__init__", all_odd)
        slow = io.BytesIO()
        chrome_json.write_chrome_json(case, slow)
    assert fast.getvalue() == slow.getvalue()
    json.loads(fast.getvalue())


def canonical(trace) -> tuple:
    """A trace as comparable plain data: slices (name, category, ts, dur, args), flows between
    slice names, counter samples by track name. Ids and row order do not matter."""
    names = trace.strings("slices", "name")
    cats = trace.strings("slices", "category")
    row_name = [names[c] for c in trace.column("slices", "name")]
    keys = trace.strings("args", "key") if trace.args.num_rows else []
    values = trace.strings("args", "string_value") if trace.args.num_rows else []
    args: dict[int, list] = {}
    for owner, k, kind, iv, dv, sv in zip(trace.column("args", "owner"), trace.column("args", "key"), trace.column("args", "kind"),
                                          trace.column("args", "int_value"), trace.column("args", "double_value"),
                                          trace.column("args", "string_value")):
        v = values[sv] if kind in (ArgKind.STRING, ArgKind.JSON) else float(dv) if kind == ArgKind.DOUBLE else int(iv)
        args.setdefault(int(owner), []).append((keys[k], int(kind), v))
    slices = Counter((row_name[r], cats[c], int(t), int(d), tuple(sorted(args.get(r, [])))) for r, (c, t, d) in
                     enumerate(zip(trace.column("slices", "category"), trace.column("slices", "ts_ns"), trace.column("slices", "dur_ns"))))
    flows = Counter((row_name[a], row_name[b]) for a, b in zip(trace.column("flows", "src"), trace.column("flows", "dst")))
    track_names = trace.tracks.column("name").to_pylist()
    counters = Counter((track_names[t], int(ts), float(v)) for t, ts, v in
                       zip(trace.column("counters", "track_id"), trace.column("counters", "ts_ns"), trace.column("counters", "value")))
    return slices, flows, counters


@budget(25)
@given(case=traces())
def test_parquet_dataset_round_trip_is_exact(case, tmp_path_factory):
    read_dataset = pytest.importorskip("traceconv.readers.parquet").read_dataset
    write_dataset = pytest.importorskip("traceconv.writers.parquet").write_dataset
    trace, _ = case
    d = tmp_path_factory.mktemp("dataset")
    write_dataset(trace, str(d))
    assert canonical(read_dataset(str(d))) == canonical(trace)


def _json_args(kind: ArgKind, value):
    """What the Chrome JSON writer makes of an arg, read back with json.loads."""
    if kind == ArgKind.DOUBLE and not math.isfinite(value):
        return str(value)
    if kind == ArgKind.JSON:
        return json.loads(json.dumps(value))
    return value


@budget(60)
@given(case=traces())
def test_chrome_json_round_trip_through_the_kineto_reader(case):
    from traceconv.readers.kineto import read_kineto

    trace, want = case
    buf = io.BytesIO()
    write_trace(trace, buf, "json")
    back = read_kineto(io.BytesIO(buf.getvalue()), name="roundtrip.json")
    assert not back.stats.get("kineto_bad_events") and back.damage == 0
    names = back.strings("slices", "name")
    cats = back.strings("slices", "category")
    raw_args = back.slices.column("args_json").to_pylist()
    got = Counter()
    for r, (n, c, ts, dur) in enumerate(zip(back.column("slices", "name"), back.column("slices", "category"),
                                             back.column("slices", "ts_ns"), back.column("slices", "dur_ns"))):
        a = json.loads(raw_args[r]) if raw_args[r] else {}
        got[(names[n], cats[c], int(ts), int(dur), json.dumps(a, sort_keys=True))] += 1
    expected = Counter()
    for _, i, cat, ts, dur, args in want["slices"]:
        a = {k: _json_args(kind, v) for k, (kind, v) in args.items()}
        expected[(f"s{i}", cat, ts, dur, json.dumps(a, sort_keys=True))] += 1
    assert got == expected
    got_counters = Counter()
    track_names = back.tracks.column("name").to_pylist()
    for t, ts, v in zip(back.column("counters", "track_id"), back.column("counters", "ts_ns"), back.column("counters", "value")):
        got_counters[(track_names[t], int(ts), float(v))] += 1
    assert got_counters == Counter(want["counters"])


@budget(300)
@given(ns=st.integers(-(1 << 61), 1 << 61), digits=st.integers(0, 6), exp=st.booleans())
def test_kineto_times_parse_exactly(ns, digits, exp):
    """µs text → ns is exact for every way a writer prints a number (3 decimals, fewer, more,
    negative, exponent), and implausible sizes are refused."""
    from decimal import Decimal

    from traceconv.readers.kineto import MAX_NS, us_to_ns

    text = f"{Decimal(ns) / 1000:.{digits}f}" if not exp else f"{Decimal(ns) / 1000:.{digits}E}"
    want = (Decimal(text) * 1000).to_integral_value()
    assert us_to_ns(text.encode()) == int(want)
    with pytest.raises(ValueError):
        us_to_ns(str(MAX_NS // 1000 + 1).encode())


# ---- random OTLP documents ---------------------------------------------------------------------

hex_id = lambda n: st.integers(1, (1 << (8 * n)) - 1).map(lambda v: f"{v:0{2 * n}x}")  # noqa: E731
otlp_scalar = st.one_of(
    st.text(max_size=10).map(lambda s: {"stringValue": s}),
    INT64.map(lambda v: {"intValue": str(v)}),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: {"doubleValue": v}),
    st.booleans().map(lambda v: {"boolValue": v}),
)
otlp_value = st.one_of(otlp_scalar, st.lists(otlp_scalar, max_size=3).map(lambda vs: {"arrayValue": {"values": vs}}),
                       st.dictionaries(st.text(min_size=1, max_size=4), otlp_scalar, max_size=3)
                       .map(lambda d: {"kvlistValue": {"values": [{"key": k, "value": v} for k, v in d.items()]}}))


@st.composite
def otlp_dumps(draw):
    """(JSONL bytes, spans): random resources/scopes/spans with attributes of every type,
    events, links, error status, parents (some present, some missing)."""
    trace_ids = draw(st.lists(hex_id(16), min_size=1, max_size=3, unique=True))
    span_ids = draw(st.lists(hex_id(8), min_size=1, max_size=25, unique=True))
    trace_of = {sid: draw(st.sampled_from(trace_ids)) for sid in span_ids}
    spans = []
    for k, sid in enumerate(span_ids):
        start = EPOCH + draw(st.integers(0, 10**9))
        sp = {
            "traceId": trace_of[sid],
            "spanId": sid,
            "name": draw(st.text(max_size=12)),
            "kind": draw(st.integers(0, 5)),
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + draw(st.integers(0, 10**8))),
            "attributes": [{"key": f"a{j}", "value": draw(otlp_value)} for j in range(draw(st.integers(0, 4)))],
            "events": [{"timeUnixNano": str(start + draw(st.integers(0, 1000))), "name": draw(st.text(max_size=5))} for _ in range(draw(st.integers(0, 2)))],
            "status": draw(st.sampled_from([{}, {"code": 1}, {"code": 2, "message": "boom"}])),
        }
        if k and draw(st.booleans()):
            sp["parentSpanId"] = draw(st.sampled_from(span_ids[:k]))
        if draw(st.integers(0, 4)) == 0:
            target = draw(st.sampled_from(span_ids))
            sp["links"] = [{"traceId": trace_of[target], "spanId": target}]
        spans.append(sp)
    lines = []
    i = 0
    while i < len(spans):
        take = draw(st.integers(1, 6))
        res = {"attributes": [{"key": "service.name", "value": {"stringValue": draw(st.sampled_from(["api", "sched"]))}}]}
        lines.append({"resourceSpans": [{"resource": res, "scopeSpans": [{"scope": {"name": "s"}, "spans": spans[i : i + take]}]}]})
        i += take
    data = b"".join(json.dumps(doc).encode() + b"\n" for doc in lines)
    return data, spans


@budget(40)
@given(case=otlp_dumps())
def test_random_otlp_dumps_are_read_span_for_span(case, tmp_path_factory):
    from traceconv.readers import read_otel

    data, spans = case
    path = tmp_path_factory.mktemp("otlp") / "dump.jsonl"
    path.write_bytes(data)
    by_path = read_otel([path])  # Arrow's fast path
    by_stream = read_otel([io.BytesIO(data)])  # the line-by-line reader
    for trace in (by_path, by_stream):
        assert trace.damage == 0
        dur = trace.column("slices", "dur_ns")
        n_events = sum(len(s["events"]) for s in spans)
        n_errors = sum(1 for s in spans if s["status"].get("code") == 2)
        assert int((dur != INSTANT).sum()) == len(spans)
        assert int((dur == INSTANT).sum()) == n_events + n_errors
        names = trace.strings("slices", "name")
        got = Counter((names[n], int(t), int(d)) for n, t, d in zip(trace.column("slices", "name"), trace.column("slices", "ts_ns"), dur) if d != INSTANT)
        want = Counter((s["name"], int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"]) - int(s["startTimeUnixNano"])) for s in spans)
        assert got == want
        assert trace.flows.num_rows == sum(len(s.get("links", ())) for s in spans)
        n_attrs = Counter(trace.column("args", "owner").tolist())
        rows = np.flatnonzero(dur != INSTANT)
        assert sum(n_attrs[r] for r in rows.tolist()) >= sum(len(s["attributes"]) for s in spans)
    assert by_path.args.num_rows == by_stream.args.num_rows
    assert by_path.slices.column("ts_ns").to_pylist() == by_stream.slices.column("ts_ns").to_pylist()


# ---- byte mutations: nothing but TraceconvError -------------------------------------------------


@st.composite
def mutated(draw, data: bytes):
    """`data` with a few random edits: flipped/overwritten bytes, deletions, insertions, a cut."""
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not b:
            break
        op = draw(st.sampled_from(["flip", "set", "delete", "insert", "cut", "dup"]))
        i = draw(st.integers(0, len(b) - 1))
        if op == "flip":
            b[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            b[i] = draw(st.sampled_from(b'{}[]",:0\\\x00\xff\n '))
        elif op == "delete":
            del b[i : i + draw(st.integers(1, 64))]
        elif op == "insert":
            b[i:i] = draw(st.binary(min_size=1, max_size=16) | st.sampled_from([b"NaN", b"1e999", b'"', b"[" * 64, b"\xc3\x28", b"\n"]))
        elif op == "dup":
            j = draw(st.integers(i, min(len(b), i + 256)))
            b[j:j] = b[i:j]
        else:
            del b[i:]
    return bytes(b)


def _small_fixture(path: Path, limit: int = 40_000) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data[:limit]


OTEL_SEEDS = {
    "jsonl": (ROOT / "fixtures/otel/generic_service.jsonl").read_bytes(),
    "pb": (ROOT / "fixtures/otel/sglang_pp2dp2tp2.pb").read_bytes()[:30_000],
    "console": (ROOT / "fixtures/otel/sglang_console.txt").read_bytes()[:12_000],
    "json": (ROOT / "fixtures/otel/tempo_batches.json").read_bytes(),
}
KINETO_SEED = (ROOT / "tests/bad_inputs/cases/kineto_unknown_ph.trace.json").read_bytes()


def _read_and_write(reader, data: bytes) -> None:
    try:
        trace = reader(data)
    except TraceconvError:
        return
    trace.validate()
    for fmt in ("perfetto", "json"):
        write_trace(trace, io.BytesIO(), fmt)


@pytest.mark.parametrize("form", sorted(OTEL_SEEDS))
@budget(30)
@given(data=st.data())
def test_mutated_otel_dumps_raise_only_our_error(form, data):
    from traceconv.readers import read_otel

    blob = data.draw(mutated(OTEL_SEEDS[form]))
    if data.draw(st.booleans()):
        blob = gzip.compress(blob, mtime=0)[: data.draw(st.integers(1, 1 << 20))]
    _read_and_write(lambda d: read_otel([io.BytesIO(d)]), blob)


@budget(60)
@given(data=st.data())
def test_mutated_kineto_traces_raise_only_our_error(data):
    from traceconv.readers.kineto import read_kineto

    blob = data.draw(mutated(KINETO_SEED))
    if data.draw(st.booleans()):
        blob = gzip.compress(blob, mtime=0)[: data.draw(st.integers(1, 1 << 20))]
    _read_and_write(lambda d: read_kineto(io.BytesIO(d), name="m.trace.json"), blob)


@budget(40)
@given(data=st.data())
def test_mutated_scheduler_logs_never_raise(data):
    from analyzers import sglang_log
    from tests.bad_inputs.make_bad_inputs import log_lines

    blob = data.draw(mutated(log_lines(30)))
    try:
        df = sglang_log.parse_log(io.BytesIO(blob))
    except TraceconvError:
        return
    assert len(df) <= blob.count(b"batch")


@budget(25)
@given(data=st.data())
def test_mutated_nsys_exports_raise_only_our_error(data, tmp_path_factory):
    from tests.bad_inputs.make_bad_inputs import nsys_like, sqlite_bytes

    read_nsys = pytest.importorskip("traceconv.readers.nsys").read_nsys
    blob = data.draw(mutated(sqlite_bytes(nsys_like)))
    path = tmp_path_factory.mktemp("nsys") / "m.sqlite"
    path.write_bytes(blob)
    _read_and_write(lambda d: read_nsys(path), blob)


@pytest.mark.parametrize("command,seed", [("otel2perfetto", OTEL_SEEDS["jsonl"]), ("torch2perfetto", KINETO_SEED)])
@budget(15)
@given(data=st.data())
def test_cli_never_prints_a_traceback_on_mutated_input(command, seed, data, tmp_path_factory, capsys):
    from traceconv.cli import main

    d = tmp_path_factory.mktemp("cli")
    path = d / "input.json"
    path.write_bytes(data.draw(mutated(seed)))
    rc = main([command, str(path), "-o", str(d / "out.pftrace")])
    err = capsys.readouterr().err
    assert rc in (0, 1), err
    assert "Traceback" not in err and "internal error" not in err, err
    if rc == 1:
        lines = err.strip().splitlines()
        assert lines[-1].startswith("error: ") and str(path) in lines[-1]

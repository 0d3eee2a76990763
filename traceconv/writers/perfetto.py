"""Write a `Trace` as a Perfetto protobuf trace (TrackEvent), streamed in column batches.

Layout of the output, all on one trusted packet sequence:

1. track descriptors: one per process (``process``), one per thread/stream (``thread``, with
   explicit ``sibling_order_rank`` so ranks sort PP, DP, TP, EP), custom tracks and lanes (a
   lane is a child track named like its thread, so the UI draws them together);
2. interned strings (event names, categories, annotation names and string values);
3. TrackEvent packets sorted by (timestamp, nesting order): ``SLICE_BEGIN``/``SLICE_END`` for
   every slice, ``INSTANT`` for instants, ``COUNTER`` for counter samples. Arguments become
   debug annotations; flows become ``flow_ids`` on the source and ``terminating_flow_ids`` on
   the destination slice.

Packets are encoded with numpy (`protowire`), not the protobuf runtime, chunk by chunk: the
fixed-width header fields as byte matrices, then each packet's variable tail (annotations, flow
ids, the Kineto args JSON straight from the trace's own column) placed after its header
(`protowire.append_tails`); only one chunk's bytes exist at a time. Arrow is not needed. Where
the optional C module `traceconv._wire` is built, each chunk's header and tails are joined in
one pass there (`protowire.native_join`), and the debug annotations of args and OTel span ids are
encoded there too (`_wire.arg_annotations`, `_wire.span_annotations`): the same bytes.
"""

from __future__ import annotations

from typing import BinaryIO, Callable

import numpy as np

from traceconv.forked import trim_heap
from traceconv.model.layout import Layout, layout
from traceconv.model.trace import INSTANT, ArgKind, Trace, TrackKind
from traceconv.writers import protowire as pw
from traceconv.writers.ids import unique_ids
from traceconv.writers.protowire import Pieces, encode_message, frame_packet

# Field numbers (perfetto/trace/trace_packet.proto, track_event/*.proto); tests check them
# against perfetto_trace_pb2.
P_TIMESTAMP, P_TRACK_EVENT, P_SEQ_ID, P_INTERNED, P_SEQ_FLAGS = 8, 11, 10, 12, 13
P_TRACK_DESCRIPTOR, P_FIRST_ON_SEQ = 60, 87
P_CHROME_EVENTS, CEB_METADATA = 5, 2  # TracePacket.chrome_events, ChromeEventBundle.metadata
TE_TYPE, TE_TRACK_UUID, TE_NAME_IID, TE_CATEGORY_IIDS, TE_DEBUG = 9, 11, 10, 3, 4
TE_FLOW_IDS, TE_TERMINATING_FLOW_IDS, TE_DOUBLE_COUNTER = 47, 48, 44
DA_NAME_IID, DA_BOOL, DA_UINT, DA_INT, DA_DOUBLE, DA_STRING, DA_STRING_IID = 1, 2, 3, 4, 5, 6, 17
DA_DICT, DA_ARRAY, DA_NAME = 11, 12, 10
ID_EVENT_CATEGORIES, ID_EVENT_NAMES, ID_DEBUG_NAMES, ID_DEBUG_STRINGS = 1, 2, 3, 29
SLICE_BEGIN, SLICE_END, INSTANT_EVENT, COUNTER_EVENT = 1, 2, 3, 4
SEQ_CLEARED, SEQ_NEEDS = 1, 2
CHILD_ORDERING_EXPLICIT = 3
PROCESS_ORDERING_EXPLICIT = THREAD_ORDERING_EXPLICIT = 1

SEQUENCE_ID = 7
CHUNK = 1 << 15  # events per encoded chunk, at most; a quarter of it at least

SPAN_KIND_NAMES = ["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"]
STATUS_NAMES = ["UNSET", "OK", "ERROR"]
SYSTEM_KEYS = ["trace_id", "span_id", "parent_span_id", "otel.kind", "otel.status_code", "args"]
DA_LEGACY_JSON = 9


def write_perfetto(trace: Trace, out: BinaryIO, *, workers: int = 1) -> dict[str, int]:
    """Stream `trace` to the binary file `out`; return counts of what was written.

    `workers` > 1 encodes the event packets in that many forked processes (where the OS forks;
    the bytes are the same either way)."""
    n = trace.num_slices
    ts = trace.column("slices", "ts_ns")
    dur = trace.column("slices", "dur_ns")
    track = trace.column("slices", "track_id")
    parent = trace.column("slices", "parent")
    lay = layout(ts, dur, track, parent, trace.num_rows("tracks"))
    trim_heap()  # (the lanes' Python lists are gone: their pages back before the encoders' arrays)

    lane_uuid = _write_descriptors(trace, lay, out)
    names = trace.strings("slices", "name")
    cats = trace.strings("slices", "category")
    keys = trace.strings("args", "key")
    values = trace.strings("args", "string_value") if trace.num_rows("args") else []
    key_base = len(keys)
    value_base = len(values)
    system_values = SPAN_KIND_NAMES + STATUS_NAMES
    _write_interned(out, names, cats, keys + SYSTEM_KEYS, values + system_values)
    _write_run_summary(trace, out)

    # events, numbered: slice i's begin (or instant) is i, span k's end n + k, counter sample j
    # n + len(spans) + j; `order` lists them by (time, nesting sequence)
    is_instant = dur == INSTANT
    spans = np.flatnonzero(~is_instant)
    if n < (1 << 31):
        spans = spans.astype(np.int32)
    n_events = n + len(spans)
    ctr_ts = trace.column("counters", "ts_ns")
    _check_time_range(ts, dur, ctr_ts)
    order, lowest = _event_order(ts, dur, spans, ctr_ts, lay)
    # trace_processor drops events before time 0: a trace with negative times (damaged cells,
    # relative clocks) is shifted as a whole, and the shift reported
    shift = -lowest if lowest < 0 else 0

    # per slice, the bytes that follow its packet header: debug annotations, flow ids, and the
    # Chrome/Kineto args JSON (taken from the trace's own column, never copied whole)
    annotate = _annotation_tails(trace, key_base, value_base)
    blobs = _flow_blobs(trace, ts, lay)
    raw_json, json_len = _raw_json_args(trace)
    json_name = pw.tag(DA_NAME_IID, 0) + pw.encode_varint(key_base + SYSTEM_KEYS.index("args") + 1) + pw.tag(DA_LEGACY_JSON, 2)
    lane, lanes_per_track, not_nested = lay.lane, lay.lanes_per_track, lay.not_nested
    del lay  # (its event sequence numbers are no longer needed)

    counter_uuid = lane_uuid[trace.column("counters", "track_id"), 0] if len(ctr_ts) else np.zeros(0, np.uint64)
    name_code = trace.column("slices", "name")
    cat_code = trace.column("slices", "category")
    has_cat = np.array([bool(c) for c in cats] + [False], dtype=bool)
    ctr_value = trace.column("counters", "value")

    if pw._wire is not None:  # (C: head and tails in one join)

        def join(head: list[Pieces], tails: list[Pieces]) -> np.ndarray:
            return pw.native_join(head + tails)[0]

    elif raw_json:  # (long tails: Arrow's join copies them a piece at a time; the JSON readers loaded it)
        from traceconv.writers.arrow_join import append_tails

        def join(head: list[Pieces], tails: list[Pieces]) -> np.ndarray:
            return append_tails(pw.pack_dense(head), tails)
    else:

        def join(head: list[Pieces], tails: list[Pieces]) -> np.ndarray:
            return pw.append_tails(pw.pack_dense(head), tails)[0]

    const = pw.tag(P_SEQ_ID, 0) + pw.encode_varint(SEQUENCE_ID) + pw.tag(P_SEQ_FLAGS, 0) + pw.encode_varint(SEQ_NEEDS)

    def encode(lo: int) -> np.ndarray:
        """The packets of events order[lo : lo + step], framed."""
        rows = order[lo : lo + step].astype(np.int64)
        m = len(rows)
        is_head = rows < n
        is_ctr = rows >= n_events
        is_end = ~is_head & ~is_ctr
        sref = np.where(is_head, rows, 0)  # the slice of a begin/instant/end (0 for counters)
        sref[is_end] = spans[rows[is_end] - n]
        cref = np.where(is_ctr, rows - n_events, 0)
        if n:
            typ = np.where(is_head, np.where(is_instant[sref], INSTANT_EVENT, SLICE_BEGIN), np.where(is_end, SLICE_END, COUNTER_EVENT))
            time = np.where(is_ctr, ctr_ts[cref] if len(ctr_ts) else 0, ts[sref] + np.where(is_end, dur[sref], 0))
            uuid = lane_uuid[track[sref], lane[sref]]
        else:
            typ, time, uuid = np.full(m, COUNTER_EVENT), ctr_ts[cref], np.zeros(m, np.uint64)
        if len(ctr_ts):
            uuid = np.where(is_ctr, counter_uuid[cref], uuid)
        if shift:  # (int64 arithmetic: exact, the range fits; `+ shift` overflows at -2^63)
            time = time - lowest
        # fixed-width fields first, then the per-slice blobs; lengths are summed up front so
        # the three nested messages (frame, packet, track event) are built in one pass
        te = [
            Pieces.constant(pw.tag(TE_TYPE, 0), m),
            pw.varint(typ.astype(np.uint64)),
            Pieces.constant(pw.tag(TE_TRACK_UUID, 0), m),
            pw.varint(uuid.astype(np.uint64)),
        ]
        if is_ctr.any():
            te += [
                Pieces.constant(pw.tag(TE_DOUBLE_COUNTER, 1), m, is_ctr),
                pw.fixed64(ctr_value[cref].view(np.uint64), is_ctr),
            ]
        tails: list[Pieces] = []
        if n:
            cat = cat_code[sref].astype(np.int64)
            head_cat = is_head & has_cat[cat]
            te += [
                Pieces.constant(pw.tag(TE_NAME_IID, 0), m, is_head),
                pw.varint(name_code[sref].astype(np.int64) + 1, is_head),
                Pieces.constant(pw.tag(TE_CATEGORY_IIDS, 0), m, head_cat),
                pw.varint(cat + 1, head_cat),
            ]
            if raw_json:
                # the annotation's header here, its JSON text as the first tail
                jl = np.where(is_head, json_len[sref], 0)
                has = jl > 0
                te += [
                    Pieces.constant(pw.tag(TE_DEBUG, 2), m, has),
                    pw.varint(len(json_name) + pw.varint(jl).length + jl, has),
                    Pieces.constant(json_name, m, has),
                    pw.varint(jl, has),
                ]
                for offsets, data, begin in raw_json:
                    mine = has & (sref >= begin) & (sref < begin + len(offsets) - 1)
                    if mine.any():
                        tails.append(_slice_rows(data, offsets, np.where(mine, sref - begin, 0), mine))
            tails += [tail(np.where(is_head, sref, -1)) for tail in annotate]
            tails += [_slice_rows(data, offsets, sref, is_head) for data, offsets in blobs]
        tail_len = sum((t.length for t in tails), np.zeros(m, np.int64))
        te_len = sum(p.length for p in te) + tail_len
        ts_piece = pw.varint(time.astype(np.uint64))
        te_len_piece = pw.varint(te_len)
        packet_len = 1 + ts_piece.length + len(const) + 1 + te_len_piece.length + te_len
        head = [
            Pieces.constant(b"\x0a", m),
            pw.varint(packet_len),
            Pieces.constant(pw.tag(P_TIMESTAMP, 0), m),
            ts_piece,
            Pieces.constant(const, m),
            Pieces.constant(pw.tag(P_TRACK_EVENT, 2), m),
            te_len_piece,
        ]
        return join(head + te, tails)

    # ~64 chunks: small traces keep less in flight (their fixed arrays are the larger part),
    # large ones pay the per-chunk overhead less often
    step = min(CHUNK, max(CHUNK // 4, -(-len(order) // 64)))
    out.writelines(_map_chunks(encode, range(0, len(order), step), workers))
    return {
        "slices": len(spans),
        "instants": int(is_instant.sum()),
        "counters": len(ctr_ts),
        "flows": trace.num_rows("flows"),
        "packets": len(order),
        "lanes": int(lanes_per_track.sum()),
        "not_nested": not_nested,
        "time_shift_ns": shift,
    }


def _event_order(ts: np.ndarray, dur: np.ndarray, spans: np.ndarray, ctr_ts: np.ndarray, lay: Layout) -> tuple[np.ndarray, int]:
    """Event numbers (see `write_perfetto`) by (time, nesting sequence), as int32 where they
    fit; and the lowest event time."""
    ends = ts[spans] + dur[spans]
    ev_ts = np.concatenate([ts, ends, ctr_ts])
    del ends
    lowest = int(ev_ts.min()) if len(ev_ts) else 0
    seq_type = np.int32 if len(lay.begin_seq) < (1 << 29) else np.int64  # (sequence numbers < 4 x slices)
    ev_seq = np.zeros(len(ev_ts), seq_type)
    ev_seq[: len(ts)] = lay.begin_seq
    np.take(lay.end_seq, spans, out=ev_seq[len(ts) : len(ts) + len(spans)])
    order = np.lexsort((ev_seq, ev_ts))
    del ev_seq, ev_ts
    if len(order) < (1 << 31):
        order = order.astype(np.int32)
    return order, lowest


def _check_time_range(ts: np.ndarray, dur: np.ndarray, ctr_ts: np.ndarray) -> None:
    """Every event time, after the shift to >= 0, must fit int64 (what trace processor keeps):
    only damaged input comes near it, and it is refused instead of wrapping around."""
    from traceconv.errors import MalformedTraceError

    limit = (1 << 63) - 1
    if len(dur) and (dur > 0).any() and (ts[dur > 0] > limit - dur[dur > 0]).any():
        raise MalformedTraceError("a slice ends after the largest int64 nanosecond: cannot write a Perfetto trace")
    times = [int(a.min()) for a in (ts, ctr_ts) if len(a)] + [int(a.max()) for a in (ts + np.maximum(dur, 0), ctr_ts) if len(a)]
    if times and min(times) < 0 and max(times) - min(times) > limit:
        raise MalformedTraceError("event times span more than 2^63 ns (292 years): cannot write a Perfetto trace")


# ---- descriptors ---------------------------------------------------------------------------


def _write_descriptors(trace: Trace, lay: Layout, out: BinaryIO) -> np.ndarray:
    """Write process/thread/lane descriptors; return uuid[track, lane] (0 where unused)."""
    procs = trace.rows("processes")
    tracks = trace.rows("tracks")
    pids = unique_ids([p["pid"] for p in procs], base=1 << 22)
    tids = unique_ids([t["tid"] for t in tracks], base=1 << 23, groups=[t["process_id"] for t in tracks])
    first = True

    def emit(desc: list) -> None:
        nonlocal first
        fields = [(P_TRACK_DESCRIPTOR, desc), (P_SEQ_ID, SEQUENCE_ID)]
        if first:
            fields += [(P_SEQ_FLAGS, SEQ_CLEARED), (P_FIRST_ON_SEQ, True)]
            first = False
        out.write(frame_packet(encode_message(fields)))

    # uuid 0 is the root: it switches processes and threads to explicit ordering (v57+)
    emit([(1, 0), (19, PROCESS_ORDERING_EXPLICIT), (20, THREAD_ORDERING_EXPLICIT)])
    # process order: by sort_index, then name
    proc_rank = {p["process_id"]: r for r, p in enumerate(sorted(procs, key=lambda p: (p["sort_index"], p["name"])))}
    proc_uuid = {}
    for p in procs:
        uuid = proc_uuid[p["process_id"]] = 0x1000000 + p["process_id"]
        emit(
            [
                (1, uuid),
                (3, [(1, pids[p["process_id"]]), (6, p["name"])] + [(8, label) for label in p["labels"] or []]),
                (11, CHILD_ORDERING_EXPLICIT),
                (12, proc_rank[p["process_id"]]),
            ]
        )
    counter_tracks = set(trace.column("counters", "track_id").tolist())
    max_lanes = int(lay.lanes_per_track.max()) if len(tracks) else 1
    lane_uuid = np.zeros((len(tracks), max_lanes), dtype=np.uint64)
    next_uuid = 0x2000000
    track_rank = {t["track_id"]: r for r, t in enumerate(sorted(tracks, key=lambda t: (t["sort_index"], t["name"], t["track_id"])))}
    for t in tracks:
        tid_ = t["track_id"]
        uuid = next_uuid
        next_uuid += 1
        lane_uuid[tid_, 0] = uuid
        parent_uuid = proc_uuid[t["process_id"]]
        pid = pids[t["process_id"]]
        if t["kind"] in (TrackKind.THREAD, TrackKind.GPU_STREAM):
            body = [(5, parent_uuid), (4, [(1, pid), (2, tids[tid_]), (5, t["name"])])]
        elif t["kind"] == TrackKind.COUNTER or tid_ in counter_tracks:
            body = [(5, parent_uuid), (2, t["name"]), (8, [])]
        else:
            body = [(5, parent_uuid), (2, t["name"])]
        emit([(1, uuid)] + body + [(11, CHILD_ORDERING_EXPLICIT), (12, track_rank[tid_])])
        for k in range(1, int(lay.lanes_per_track[tid_])):
            lane_uuid[tid_, k] = next_uuid
            emit([(1, next_uuid), (5, uuid), (2, t["name"]), (12, k)])
            next_uuid += 1
    return lane_uuid


def _write_run_summary(trace: Trace, out: BinaryIO) -> None:
    """The run summary as Chrome metadata (a `ChromeEventBundle` packet): trace processor puts
    each entry in its ``metadata`` table as ``cr-<name>`` (``traceconv_stats`` as JSON, one
    ``traceconv_stats.<reason>`` int per reason, ``traceconv_damage``, ``traceconv_warnings``)."""
    import json

    from traceconv import __version__
    from traceconv.writers.summary import run_summary

    summary = run_summary(trace)
    entries = [[(1, "traceconv_version"), (2, __version__)], [(1, "traceconv_stats"), (5, json.dumps(summary["stats"]))],
               [(1, "traceconv_damage"), (4, summary["damage"])]]
    entries += [[(1, f"traceconv_stats.{k}"), (4, v)] for k, v in summary["stats"].items()]
    if summary["warnings"]:
        entries.append([(1, "traceconv_warnings"), (5, json.dumps(summary["warnings"]))])
    out.write(frame_packet(encode_message([(P_CHROME_EVENTS, [(CEB_METADATA, e) for e in entries]), (P_SEQ_ID, SEQUENCE_ID)])))


def _write_interned(out: BinaryIO, names: list[str], cats: list[str], keys: list[str], values: list[str]) -> None:
    """The interned strings, 20000 entries a packet; each entry (`InternedString` iid and text)
    is encoded with the packets' vectorised encoder."""
    groups = ((ID_EVENT_NAMES, names), (ID_EVENT_CATEGORIES, cats), (ID_DEBUG_NAMES, keys), (ID_DEBUG_STRINGS, values))
    fields = np.concatenate([np.full(len(strings), f, np.uint64) for f, strings in groups])
    iids = np.concatenate([np.arange(1, len(strings) + 1, dtype=np.uint64) for _, strings in groups])
    texts = [s for _, strings in groups for s in strings]
    for lo in range(0, len(texts), 20000):
        hi = min(len(texts), lo + 20000)
        data, offsets = pw.ragged_bytes([s.encode("utf-8", "replace") for s in texts[lo:hi]])
        m = hi - lo
        size = np.diff(offsets)
        iid, length = pw.varint(iids[lo:hi]), pw.varint(size)
        pieces = [
            pw.varint(fields[lo:hi] * np.uint64(8) + np.uint64(2)),  # (the entry's field, LEN)
            pw.varint(1 + iid.length + 1 + length.length + size),
            Pieces.constant(pw.tag(1, 0), m),
            iid,
            Pieces.constant(pw.tag(2, 2), m),
            length,
            Pieces.ragged(data, offsets),
        ]
        body = pw.concat(pieces)[0].tobytes()
        out.write(frame_packet(encode_message([(P_INTERNED, body), (P_SEQ_ID, SEQUENCE_ID), (P_SEQ_FLAGS, SEQ_NEEDS)])))


# ---- per-slice annotation and flow blobs ----------------------------------------------------


def _annotation_tails(trace: Trace, key_base: int, value_base: int) -> list[Callable[[np.ndarray], Pieces]]:
    """Encoders of the `debug_annotations` fields, one per source: given the slices of a chunk's
    packets (-1: none), their annotation bytes, one piece per packet. Encoded chunk by chunk, so
    only one chunk's annotations exist at a time."""
    out = []
    if trace.num_rows("args"):
        out.append(_arg_annotations(trace))
    if trace.has_column("slices", "span_id"):
        out.append(_span_annotations(trace, key_base, value_base))
    return out


def _rows_tail(slices: np.ndarray, first: np.ndarray | None, count: np.ndarray, encode_rows) -> Pieces:
    """Bytes for each packet: the encodings of rows first[s] .. first[s] + count[s] - 1 of its
    slice s (none where s < 0; `first` None: row s), one piece per packet.
    ``encode_rows(rows) -> (data, offsets)`` is called on bounded batches of rows."""
    c = np.where(slices >= 0, count[np.maximum(slices, 0)], 0).astype(np.int64)
    bounds = np.zeros(len(slices) + 1, np.int64)
    np.cumsum(c, out=bounds[1:])
    total = int(bounds[-1])
    if not total:
        return Pieces.ragged(np.zeros(0, np.uint8), np.zeros(len(slices) + 1, np.int64))
    f = np.where(c > 0, slices if first is None else first[np.maximum(slices, 0)], 0)
    rows = np.repeat(f - bounds[:-1], c) + np.arange(total)
    data, offsets = _in_batches(total, lambda lo, hi: encode_rows(rows[lo:hi]))
    return Pieces.ragged(data, offsets[bounds])


def _wrap_annotation(body: list[Pieces]) -> tuple[np.ndarray, np.ndarray]:
    """One ``debug_annotations`` field per row around the pieces of its body, in one pass."""
    m = len(body[0].length)
    return pw.concat([Pieces.constant(pw.tag(TE_DEBUG, 2), m), pw.varint(sum(p.length for p in body))] + body)


def _in_batches(n: int, encode, step: int = 1 << 16) -> tuple[np.ndarray, np.ndarray]:
    """Run ``encode(lo, hi) -> (data, offsets)`` over row batches and join the results."""
    datas, lengths = [], []
    for lo in range(0, n, step):
        data, offsets = encode(lo, min(n, lo + step))
        datas.append(data)
        lengths.append(np.diff(offsets))
    offsets = np.zeros(n + 1, np.int64)
    if n:
        np.cumsum(np.concatenate(lengths), out=offsets[1:])
    return (np.concatenate(datas) if datas else np.zeros(0, np.uint8)), offsets


def args_by_slice(trace: Trace) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Where each slice's args are: (perm, first, count), slice s's args being the arg rows
    ``perm[first[s] : first[s] + count[s]]`` in their table order (perm None: the table is
    already by owner)."""
    owner = trace.column("args", "owner")
    perm = np.argsort(owner, kind="stable") if len(owner) > 1 and (np.diff(owner) < 0).any() else None
    if perm is not None and len(owner) < (1 << 31):
        perm = perm.astype(np.int32)
    low = int((owner < 0).sum()) if len(owner) and owner.min() < 0 else 0  # (sorted first; no slice's)
    count = np.bincount(owner[owner >= 0] if low else owner, minlength=trace.num_slices)[: trace.num_slices]
    first = low + np.cumsum(count) - count
    if len(owner) < (1 << 31):
        count, first = count.astype(np.int32), first.astype(np.int32)
    return perm, first, count


def _arg_annotations(trace: Trace) -> Callable[[np.ndarray], Pieces]:
    """The args of each packet's slice (in their order), encoded per chunk."""
    perm, first, count = args_by_slice(trace)
    kind_all = trace.column("args", "kind")
    key_all = trace.column("args", "key")
    ival_all = trace.column("args", "int_value")
    dval_all = trace.column("args", "double_value")
    svals_all = trace.column("args", "string_value")
    c_encode = getattr(pw._wire, "arg_annotations", None)  # (None: no C module, or one built before it had this)
    if c_encode is not None:
        columns = [np.ascontiguousarray(c) for c in (first, count)] + [perm]
        columns += [np.ascontiguousarray(c) for c in (kind_all, key_all, ival_all, dval_all, svals_all)]
        columns += _json_encodings(trace, kind_all, svals_all)

        def native(slices: np.ndarray) -> Pieces:
            data, offsets = c_encode(np.ascontiguousarray(slices, np.int64), *columns)
            return Pieces.ragged(np.frombuffer(data, np.uint8), np.frombuffer(offsets, np.int64))

        return native
    strings = None
    json_blobs: dict[int, bytes] = {}

    def encode(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nonlocal strings
        m = len(pos)
        rows = pos if perm is None else perm[pos]
        kind, ival, dval = kind_all[rows], ival_all[rows], dval_all[rows]
        key, svals = key_all[rows].astype(np.int64), svals_all[rows].astype(np.int64)
        is_str = kind == ArgKind.STRING
        is_int = kind == ArgKind.INT
        is_uint = kind == ArgKind.UINT
        is_dbl = kind == ArgKind.DOUBLE
        is_bool = kind == ArgKind.BOOL
        is_json = kind == ArgKind.JSON
        uval = ival.view(np.uint64)
        pieces = [Pieces.constant(pw.tag(DA_NAME_IID, 0), m), pw.varint(key + 1)]
        for field, has, value in ((DA_STRING_IID, is_str, np.maximum(svals, 0) + 1), (DA_INT, is_int, uval), (DA_UINT, is_uint, uval),
                                  (DA_BOOL, is_bool, uval)):
            if has.any():  # (kinds absent from the chunk add no columns to pack)
                pieces += [Pieces.constant(pw.tag(field, 0), m, has), pw.varint(value, has)]
        if is_dbl.any():
            pieces += [Pieces.constant(pw.tag(DA_DOUBLE, 1), m, is_dbl), pw.fixed64(dval.view(np.uint64), is_dbl)]
        if is_json.any():
            if strings is None:
                strings = trace.strings("args", "string_value")
            pieces.append(_json_values(np.flatnonzero(is_json), svals, strings, m, json_blobs))
        return _wrap_annotation(pieces)

    return lambda slices: _rows_tail(slices, first, count, encode)


def _json_values(rows: np.ndarray, svals: np.ndarray, strings: list[str], m: int, done: dict[int, bytes]) -> Pieces:
    """Arrays and objects become nested `array_values` / `dict_entries` (rare: Python; each
    distinct JSON text is encoded once, kept in `done` by its string code)."""
    blobs = []
    for code in svals[rows].tolist():
        blob = done.get(code)
        if blob is None:
            blob = done[code] = _json_blob(code, strings)
        blobs.append(blob)
    offsets = np.zeros(m + 1, dtype=np.int64)
    lengths = np.zeros(m, dtype=np.int64)
    lengths[rows] = [len(b) for b in blobs]
    np.cumsum(lengths, out=offsets[1:])
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    return Pieces.ragged(data, offsets)


def _json_blob(code: int, strings: list[str]) -> bytes:
    """The nested DebugAnnotation fields of the JSON text with string code `code`."""
    import json

    try:
        value = json.loads(strings[code])
    except (ValueError, IndexError):
        value = strings[code] if code >= 0 else None
    return encode_message(_nested_fields(value))


def _json_encodings(trace: Trace, kind: np.ndarray, svals: np.ndarray) -> list:
    """For the C encoder: the string codes of the JSON-valued args (sorted, distinct), and
    their `_json_blob`s as offsets and bytes; Nones where there are none."""
    codes = svals[kind == ArgKind.JSON].astype(np.int64)
    if not len(codes):
        return [None, None, None]
    codes.sort()
    codes = codes[np.concatenate(([True], codes[1:] != codes[:-1]))]
    strings = trace.strings("args", "string_value")
    data, offsets = pw.ragged_bytes([_json_blob(code, strings) for code in codes.tolist()])
    return [codes, offsets, data]


def _nested_fields(value) -> list:
    """DebugAnnotation fields (without a name) for a JSON value."""
    if isinstance(value, bool):
        return [(DA_BOOL, value)]
    if isinstance(value, int):
        if -(1 << 63) <= value < (1 << 63):
            return [(DA_INT, value)]
        return [(DA_STRING, str(value))]
    if isinstance(value, float):
        return [(DA_DOUBLE, ("double", value))]
    if isinstance(value, str):
        return [(DA_STRING, value)]
    if isinstance(value, list):
        return [(DA_ARRAY, _nested_fields(v)) for v in value] or [(DA_STRING, "[]")]
    if isinstance(value, dict):
        return [(DA_DICT, [(DA_NAME, str(k))] + _nested_fields(v)) for k, v in value.items()] or [(DA_STRING, "{}")]
    return [(DA_STRING, "null")]


def hex_text(*columns: np.ndarray) -> np.ndarray:
    """Lower-case hex text of uint64 columns, 16 characters each, side by side: a byte matrix."""
    ids = np.empty((len(columns[0]), len(columns)), ">u8")
    for k, c in enumerate(columns):
        ids[:, k] = c
    return np.frombuffer(ids.tobytes().hex().encode("ascii"), np.uint8).reshape(len(ids), 16 * len(columns))


def _hex_pieces(*columns: np.ndarray) -> Pieces:
    """`hex_text` as one piece per row."""
    return Pieces.dense(hex_text(*columns), np.full(len(columns[0]), 16 * len(columns), np.int64))


def _span_annotations(trace: Trace, key_base: int, value_base: int) -> Callable[[np.ndarray], Pieces]:
    """trace_id, span_id, parent_span_id, otel.kind, otel.status_code for OTel spans, encoded
    per chunk.

    Every piece is fixed-width, so each span's five annotations are packed in one pass.
    """
    span_id = trace.column("slices", "span_id")
    count = ((span_id != 0) & (trace.column("slices", "dur_ns") != INSTANT)).astype(np.int8)
    cols = {k: trace.column("slices", k) for k in ("trace_id_hi", "trace_id_lo", "parent_span_id", "span_kind", "status_code")}
    c_encode = getattr(pw._wire, "span_annotations", None)
    if c_encode is not None:
        columns = [np.ascontiguousarray(c) for c in (count, cols["trace_id_hi"], cols["trace_id_lo"], span_id, cols["parent_span_id"],
                                                     cols["span_kind"], cols["status_code"])]
        # the five keys' iids; kind and status iids: base + the code clipped to the names
        iids = (tuple(key_base + k + 1 for k in range(5)), value_base + 1, len(SPAN_KIND_NAMES) - 1,
                value_base + len(SPAN_KIND_NAMES) + 1, len(STATUS_NAMES) - 1)

        def native(slices: np.ndarray) -> Pieces:
            data, offsets = c_encode(np.ascontiguousarray(slices, np.int64), *columns, *iids)
            return Pieces.ragged(np.frombuffer(data, np.uint8), np.frombuffer(offsets, np.int64))

        return native

    def encode(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = len(rows)
        psid = cols["parent_span_id"][rows]
        status = cols["status_code"][rows].astype(np.int64)
        kind = cols["span_kind"][rows].astype(np.int64)
        has_parent = psid != 0
        has_status = status != 0

        def annotation(key_index: int, value: list[Pieces], mask=None) -> list[Pieces]:
            name = pw.tag(DA_NAME_IID, 0) + pw.encode_varint(key_base + key_index + 1)
            body_len = len(name) + sum(p.length for p in value)
            head = [Pieces.constant(pw.tag(TE_DEBUG, 2), m, mask), pw.varint(body_len, mask), Pieces.constant(name, m, mask)]
            return head + [p.masked(mask) if mask is not None else p for p in value]

        def text(pieces: list[Pieces], length: int) -> list[Pieces]:
            return [Pieces.constant(pw.tag(DA_STRING, 2) + pw.encode_varint(length), m)] + pieces

        def interned(values: np.ndarray) -> list[Pieces]:
            return [Pieces.constant(pw.tag(DA_STRING_IID, 0), m), pw.varint(values)]

        kind_iid = value_base + np.clip(kind, 0, 5) + 1
        status_iid = value_base + len(SPAN_KIND_NAMES) + np.clip(status, 0, 2) + 1
        pieces = (
            annotation(0, text([_hex_pieces(cols["trace_id_hi"][rows], cols["trace_id_lo"][rows])], 32))
            + annotation(1, text([_hex_pieces(span_id[rows])], 16))
            + annotation(2, text([_hex_pieces(psid)], 16), has_parent)
            + annotation(3, interned(kind_iid))
            + annotation(4, interned(status_iid), has_status)
        )
        return pw.concat(pieces)

    return lambda slices: _rows_tail(slices, None, count, encode)


def _raw_json_args(trace: Trace) -> tuple[list[tuple[np.ndarray, np.ndarray, int]], np.ndarray]:
    """The ``args`` JSON column's chunks (int64 offsets, bytes, first slice row) and, per slice,
    the length to write (absent or ``{}`` → 0). Written as one ``legacy_json_value`` annotation
    named ``args``: trace processor expands it into ``debug.args.*``, byte for byte as in the
    source file."""
    if not trace.has_column("slices", "args_json") or not trace.num_slices:
        return [], np.zeros(0, np.int32)
    chunks = []
    json_len = np.zeros(trace.num_slices, np.int32)
    begin = 0
    for offsets, data in trace.binary_chunks("slices", "args_json"):
        n = len(offsets) - 1
        for lo in range(0, n, 1 << 16):  # (in pieces: no temporaries the size of the trace)
            length = np.diff(offsets[lo : lo + (1 << 16) + 1])
            if json_len.dtype == np.int32 and length.max() >= (1 << 31):
                json_len = json_len.astype(np.int64)
            json_len[begin + lo : begin + lo + len(length)] = np.where(length > 2, length, 0)  # skip "{}"
        if n:
            chunks.append((offsets, data, begin))
        begin += n
    return (chunks if json_len.any() else []), json_len


def _slice_rows(data: np.ndarray, offsets: np.ndarray, slices: np.ndarray, mask: np.ndarray) -> Pieces:
    """The bytes of each packet's slice (where `mask`) in a per-slice ragged column."""
    start = offsets[slices].astype(np.int64)
    return Pieces(data, start, np.where(mask, offsets[slices + 1] - start, 0))


def _flow_blobs(trace: Trace, ts: np.ndarray, lay: Layout) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per slice, `flow_ids` on the flow's earlier slice and `terminating_flow_ids` on the later,
    as (bytes, offsets per slice).

    Trace processor reads events in time order and ignores a termination it meets before the
    flow began, so the arrow's first end must be the slice that begins first.
    """
    if not trace.num_rows("flows"):
        return []
    n = trace.num_slices
    fid = trace.column("flows", "flow_id").astype("<u8", copy=False)
    src = trace.column("flows", "src")
    dst = trace.column("flows", "dst")
    t_src, t_dst = ts[src], ts[dst]
    src_first = t_src < t_dst
    tie = np.flatnonzero(t_src == t_dst)
    del t_src, t_dst
    src_first[tie] = lay.begin_seq[src[tie]] <= lay.begin_seq[dst[tie]]
    del tie
    result = []
    for first, field_no in ((True, TE_FLOW_IDS), (False, TE_TERMINATING_FLOW_IDS)):
        owner = np.where(src_first, src, dst) if first else np.where(src_first, dst, src)
        # each entry is the field's tag and 8 bytes of id, grouped by slice (stable)
        tag = np.frombuffer(pw.tag(field_no, 1), np.uint8)
        width = len(tag) + 8
        entries = np.empty((len(owner), width), np.uint8)
        entries[:, : len(tag)] = tag
        entries[:, len(tag) :] = fid[np.argsort(owner, kind="stable")].view(np.uint8).reshape(-1, 8)
        offsets = np.zeros(n + 1, np.int32 if len(owner) * width < (1 << 31) else np.int64)
        np.cumsum(np.bincount(owner, minlength=n), out=offsets[1:])
        offsets *= width
        del owner
        result.append((entries.reshape(-1), offsets))
    return result


_ENCODE = None  # the chunk encoder the forked workers inherit


def _encode_in_worker(lo: int) -> bytes:
    return _ENCODE(lo).tobytes()  # type: ignore[misc]


def _map_chunks(encode, starts: range, workers: int):
    """encode(lo) for each chunk start, in order: here, or in forked workers that inherit the
    encoder and its arrays (nothing is pickled but the chunk start and the packets)."""
    from traceconv.forked import can_fork, imap_forked

    if workers <= 1 or len(starts) < 4 or not can_fork():
        yield from map(encode, starts)
        return
    global _ENCODE
    _ENCODE = encode
    try:
        yield from imap_forked(_encode_in_worker, starts, workers)
    finally:
        _ENCODE = None

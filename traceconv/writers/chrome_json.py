"""Write a `Trace` as Chrome Trace Event JSON (for tools that only read JSON), streamed.

Times are written as exact decimal µs (3 decimals) relative to ``baseTimeNanoseconds``, the
convention of torch ≥ 2.4 Kineto traces, so absolute ns survive and our own Kineto reader reads
the file back exactly. Lanes become threads of their own (JSON has no child tracks), named like
their thread. Flows are ``s``/``f`` pairs (``f`` binds to the enclosing slice).

Slice lines are built a chunk at a time from byte pieces (`protowire`'s vectorised join), as
the Perfetto writer builds packets: each distinct name, category, key and string value is
JSON-encoded once, numbers as one msgspec list each. A slice whose args would not survive
that as they do in a dict (a key twice, a user arg named like an OTel span field) is written
from a dict, as before.
"""

from __future__ import annotations

from itertools import chain
from typing import BinaryIO

import msgspec
import numpy as np

from traceconv.model.layout import layout
from traceconv.model.trace import INSTANT, ArgKind, Trace, TrackKind
from traceconv.writers import protowire as pw
from traceconv.writers.ids import unique_ids
from traceconv.writers.protowire import Pieces
from traceconv.writers.perfetto import SPAN_KIND_NAMES, STATUS_NAMES, args_by_slice, hex_text
from traceconv.writers.summary import run_summary

_enc = msgspec.json.Encoder().encode


def _us(ns: int) -> bytes:
    q, r = divmod(ns, 1000)
    return f"{q}.{r:03d}".encode() if r else str(q).encode()


def write_chrome_json(trace: Trace, out: BinaryIO) -> dict[str, int]:
    n = trace.num_slices
    ts = trace.column("slices", "ts_ns")
    dur = trace.column("slices", "dur_ns")
    track = trace.column("slices", "track_id")
    parent = trace.column("slices", "parent")
    lay = layout(ts, dur, track, parent, trace.num_rows("tracks"))
    ctr_ts = trace.column("counters", "ts_ns")
    starts = np.concatenate([ts, ctr_ts])
    base = int(starts.min()) if len(starts) else 0
    base -= base % 1000

    procs = trace.rows("processes")
    tracks = trace.rows("tracks")
    pids = unique_ids([p["pid"] for p in procs], base=1 << 22)
    tids = unique_ids([t["tid"] for t in tracks], base=1 << 23, groups=[t["process_id"] for t in tracks])
    lane_tid: dict[tuple[int, int], int] = {}
    fresh = (1 << 24)
    meta: list[bytes] = []
    for p in procs:
        pid = pids[p["process_id"]]
        meta.append(_enc({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": p["name"]}}))
        if p["labels"]:
            meta.append(_enc({"ph": "M", "name": "process_labels", "pid": pid, "tid": 0, "args": {"labels": ",".join(p["labels"])}}))
        meta.append(_enc({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": p["sort_index"]}}))
    track_pid = [pids[t["process_id"]] for t in tracks]
    for rank, t in enumerate(sorted(tracks, key=lambda t: (t["sort_index"], t["name"], t["track_id"]))):
        for k in range(int(lay.lanes_per_track[t["track_id"]])):
            if k == 0 and t["kind"] != TrackKind.TRACK:
                tid = tids[t["track_id"]]
            else:
                tid = fresh
                fresh += 1
            lane_tid[(t["track_id"], k)] = tid
            pid = track_pid[t["track_id"]]
            meta.append(_enc({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": t["name"]}}))
            meta.append(_enc({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": {"sort_index": rank * 1000 + k}}))

    out.write(b'{"displayTimeUnit":"ns","baseTimeNanoseconds":' + str(base).encode() + b',"traceEvents":[\n')
    first = True

    def emit(line: bytes) -> None:
        nonlocal first
        out.write(line if first else b",\n" + line)
        first = False

    for line in meta:
        emit(line)
    order = np.lexsort((lay.begin_seq, ts)) if n else np.zeros(0, np.int64)
    where = _Where(trace, base, track_pid, lane_tid, lay.lane) if n else None
    # then flows: s at the source slice's start, f (bound to the enclosing slice) at the
    # destination's → GPU op flows are written the Kineto way (cat ac2g, id = correlation)
    for chunk in chain(_slice_lines(trace, order, where), _flow_lines(trace, where)):
        out.write(chunk[2:] if first else chunk)  # (each line comes with its ",\n")
        first = False
    if len(ctr_ts):
        cnames = {t["track_id"]: t["name"] for t in tracks}
        for t, c_ts, v in zip(trace.column("counters", "track_id").tolist(), ctr_ts.tolist(), trace.column("counters", "value").tolist()):
            emit(b'{"ph":"C","pid":%d,"tid":0,"ts":%s,"name":%s,"args":{"value":%s}}' % (track_pid[t], _us(c_ts - base), _enc(cnames[t]), _enc(v)))
    other = {"traceconv": run_summary(trace)}
    out.write(b'\n],"otherData":' + _enc(other) + b"}\n")
    return {"slices": int((dur != INSTANT).sum()), "instants": int((dur == INSTANT).sum()), "flows": trace.num_rows("flows")}


CHUNK = 1 << 13  # slices per chunk of lines
_SPAN_KEYS = ("trace_id", "span_id", "parent_span_id", "otel.kind", "otel.status_code")
_NUMERIC = [ArgKind.INT, ArgKind.UINT, ArgKind.DOUBLE, ArgKind.BOOL]
_KINDS = pw.ragged_bytes([b',"otel.kind":' + _enc(v) for v in SPAN_KIND_NAMES])
_STATUSES = pw.ragged_bytes([b',"otel.status_code":' + _enc(v) for v in STATUS_NAMES])
_FRACTION = np.frombuffer(b"".join(b".%03d" % r for r in range(1000)), np.uint8).reshape(1000, 4)  # ".000" .. ".999"


def _pick(table: tuple[np.ndarray, np.ndarray], index: np.ndarray, mask: np.ndarray | None = None) -> Pieces:
    """Entry index[i] of a `protowire.ragged_bytes` table for each row (empty where `mask` is False)."""
    data, offsets = table
    start = offsets[index]
    length = offsets[index + 1] - start
    return Pieces(data, start, length if mask is None else np.where(mask, length, 0))


def _numbers(values: list) -> Pieces:
    """msgspec's JSON text of each number (ints or floats: no commas inside), one list encoded."""
    text = np.frombuffer(_enc(values), np.uint8)
    commas = np.flatnonzero(text == ord(","))
    start = np.concatenate(([1], commas + 1)) if len(values) else np.zeros(0, np.int64)
    end = np.concatenate((commas, [len(text) - 1])) if len(values) else np.zeros(0, np.int64)
    return Pieces(text, start.astype(np.int64), (end - start).astype(np.int64))


def _us_pieces(ns: np.ndarray) -> list[Pieces]:
    """`_us` of each value: the µs as an integer, then ".ddd" where there are ns left."""
    q, r = np.divmod(ns, 1000)
    frac = _FRACTION[r]
    return [_numbers(q.tolist()), Pieces.dense(frac, np.where(r != 0, 4, 0).astype(np.int64))]


class _Where:
    """``"pid":P,"tid":T,"ts":µs`` of slices: the thread of their lane, their start."""

    def __init__(self, trace: Trace, base: int, track_pid: list[int], lane_tid: dict[tuple[int, int], int], lane: np.ndarray) -> None:
        self.ts = trace.column("slices", "ts_ns")
        self.track = trace.column("slices", "track_id")
        self.lane = lane
        self.base = base
        combos = sorted(lane_tid)
        self.combo = np.zeros((max(t for t, _ in combos) + 1, max(k for _, k in combos) + 1), np.int64)
        for i, (t, k) in enumerate(combos):
            self.combo[t, k] = i
        self.ids = pw.ragged_bytes([b'"pid":%d,"tid":%d,"ts":' % (track_pid[t], lane_tid[(t, k)]) for t, k in combos])
        # (damaged times far from the others: Python ints, as `_us` takes them)
        self.in_int64 = base >= -(1 << 63) and int(self.ts.max()) - base < (1 << 63)

    def of(self, rows: np.ndarray) -> list[Pieces]:
        ts = self.ts[rows]
        text = _us_pieces(ts - self.base) if self.in_int64 else [Pieces.ragged(*pw.ragged_bytes([_us(t - self.base) for t in ts.tolist()]))]
        return [_pick(self.ids, self.combo[self.track[rows], self.lane[rows]]), *text]


def _slice_lines(trace: Trace, order: np.ndarray, where: _Where | None):
    """The slices' lines in `order`, each as ``,\n{...}``, a chunk of bytes at a time."""
    if not len(order):
        return
    dur = trace.column("slices", "dur_ns")
    name_code = trace.column("slices", "name")
    cat_code = trace.column("slices", "category")
    names = pw.ragged_bytes([b',"name":' + _enc(v) for v in trace.strings("slices", "name")])
    cats = pw.ragged_bytes([b',"cat":' + _enc(v) if v else b"" for v in trace.strings("slices", "category")])
    args = _ArgsText(trace)
    raw = _raw_args(trace)
    for lo in range(0, len(order), CHUNK):
        rows = order[lo : lo + CHUNK].astype(np.int64)
        m = len(rows)
        inst = dur[rows] == INSTANT
        pieces = [
            Pieces.constant(b',\n{"ph":"i",', m, inst),
            Pieces.constant(b',\n{"ph":"X",', m, ~inst),
            *where.of(rows),
            Pieces.constant(b',"s":"t"', m, inst),
            Pieces.constant(b',"dur":', m, ~inst),
            *[p.masked(~inst) for p in _us_pieces(np.where(inst, 0, dur[rows]))],
            _pick(names, name_code[rows].astype(np.int64)),
            _pick(cats, cat_code[rows].astype(np.int64)),
        ]
        blob, has = args.of(rows)
        pieces.append(blob)
        if raw is not None:
            offsets, data = raw
            start = offsets[rows]
            length = np.where(has, 0, offsets[rows + 1] - start)
            pieces += [Pieces.constant(b',"args":', m, length > 0), Pieces(data, start, length)]
        pieces.append(Pieces.constant(b"}", m))
        data, _ = pw.concat(pieces)
        yield data


def _flow_lines(trace: Trace, where: _Where | None):
    """Each flow's ``s`` and ``f`` lines, each as ``,\n{...}``, a chunk of bytes at a time."""
    if not trace.num_rows("flows"):
        return
    corr = trace.column("slices", "correlation")
    track_proc = trace.column("tracks", "process_id")
    fid, src, dst = (trace.column("flows", k) for k in ("flow_id", "src", "dst"))
    for lo in range(0, len(fid), CHUNK):
        s, d = src[lo : lo + CHUNK].astype(np.int64), dst[lo : lo + CHUNK].astype(np.int64)
        m = len(s)
        kineto = (corr[s] >= 0) & (corr[s] == corr[d])
        # correlation ids repeat across ranks: namespace them by process
        ids = [(p << 40) | c if k else f for k, p, c, f in zip(kineto.tolist(), track_proc[where.track[s]].tolist(), corr[s].tolist(),
                                                                fid[lo : lo + CHUNK].tolist())]
        number = _numbers(ids)
        rows = np.empty(2 * m, np.int64)  # s, f, s, f, ...
        rows[0::2], rows[1::2] = s, d
        is_f = np.arange(2 * m) % 2 == 1
        both = np.repeat(kineto, 2)
        pieces = [
            Pieces.constant(b',\n{"ph":"s","id":', 2 * m, ~is_f),
            Pieces.constant(b',\n{"ph":"f","id":', 2 * m, is_f),
            Pieces(number.data, np.repeat(number.start, 2), np.repeat(number.length, 2)),
            Pieces.constant(b",", 2 * m),
            *where.of(rows),
            Pieces.constant(b',"name":"ac2g","cat":"ac2g"', 2 * m, both),
            Pieces.constant(b',"name":"flow","cat":"flow"', 2 * m, ~both),
            Pieces.constant(b',"bp":"e"', 2 * m, is_f),
            Pieces.constant(b"}", 2 * m),
        ]
        yield pw.concat(pieces)[0]


class _ArgsText:
    """``,"args":{...}`` of slices: the arg table's rows of each (in their order), then the
    OTel span fields, as `_args_dicts` would make and msgspec encode them."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        n = trace.num_slices
        owner = trace.column("args", "owner")
        self.perm, self.first, self.count = args_by_slice(trace)
        self.kind = trace.column("args", "kind") if len(owner) else np.zeros(0, np.int8)
        self.key = trace.column("args", "key").astype(np.int64) if len(owner) else np.zeros(0, np.int64)
        self.ival = trace.column("args", "int_value") if len(owner) else np.zeros(0, np.int64)
        self.dval = trace.column("args", "double_value") if len(owner) else np.zeros(0, np.float64)
        self.sval = trace.column("args", "string_value").astype(np.int64) if len(owner) else np.zeros(0, np.int64)
        self.spans = trace.has_column("slices", "span_id")
        keys = trace.strings("args", "key") if len(owner) else []
        strings = trace.strings("args", "string_value") if len(owner) else []
        self.keys = pw.ragged_bytes([_enc(k) + b":" for k in keys])
        self.strings = pw.ragged_bytes([_enc(v) for v in strings])
        # slices written from a dict: a key twice, a key the span fields take, an odd code
        odd = np.zeros(n + 1, bool)
        if len(owner):
            pair = np.lexsort((self.key, owner))
            o, k = owner[pair], self.key[pair]
            dup = (o[1:] == o[:-1]) & (k[1:] == k[:-1])
            odd[np.clip(o[1:][dup], -1, n)] = True
            numeric = np.isin(self.kind, _NUMERIC)
            bad = (self.key < 0) | (self.key >= len(keys)) | (~numeric & ((self.sval < 0) | (self.sval >= len(strings))))
            if self.spans:
                taken = np.zeros(len(keys) + 1, bool)
                taken[[keys.index(k) for k in _SPAN_KEYS if k in keys]] = True
                bad |= taken[self.key.clip(0, len(keys))]
            odd[np.clip(owner[bad], -1, n)] = True
        self.odd = odd[:n]
        json_rows = ~np.isin(self.kind, _NUMERIC + [ArgKind.STRING]) & (self.sval >= 0) & (self.sval < len(strings))
        self.json_codes = np.unique(self.sval[json_rows]) if json_rows.any() else np.zeros(0, np.int64)
        self.json = pw.ragged_bytes([_enc(_json_value(strings[c])) for c in self.json_codes.tolist()])

    def of(self, rows: np.ndarray) -> tuple[Pieces, np.ndarray]:
        """For slices `rows`: ``,"args":{...}`` (empty where none) and whether there is one."""
        m = len(rows)
        count = np.where(self.odd[rows], 0, self.count[rows]).astype(np.int64)
        bounds = np.zeros(m + 1, np.int64)
        np.cumsum(count, out=bounds[1:])
        total = int(bounds[-1])
        pos = np.repeat(self.first[rows] - bounds[:-1], count) + np.arange(total)
        a = pos if self.perm is None else self.perm[pos]
        opens = np.zeros(total, bool)
        opens[bounds[:-1][count > 0]] = True
        kind = self.kind[a]
        parts = [Pieces.constant(b'{', total, opens), Pieces.constant(b',', total, ~opens), _pick(self.keys, self.key[a])]
        parts += self._values(a, kind)
        arg_text, arg_offsets = pw.concat(parts) if total else (np.zeros(0, np.uint8), np.zeros(1, np.int64))
        user = Pieces(arg_text, arg_offsets[bounds[:-1]], arg_offsets[bounds[1:]] - arg_offsets[bounds[:-1]])
        has_user = count > 0
        span, has_span = self._span_fields(rows, has_user) if self.spans else ([], np.zeros(m, bool))
        has = has_user | has_span
        pieces = [Pieces.constant(b',"args":', m, has), user, *span, Pieces.constant(b"}", m, has)]
        odd = np.flatnonzero(self.odd[rows])
        if len(odd):  # written from a dict
            keep = ~self.odd[rows]
            pieces = [p.masked(keep) for p in pieces]
            dicts = _args_dicts(self.trace, rows[odd].tolist())
            blobs = [b""] * m
            for i, r in zip(odd.tolist(), rows[odd].tolist()):
                if dicts.get(r):
                    blobs[i] = b',"args":' + _enc(dicts[r])
                    has[i] = True
                else:
                    has[i] = False
            pieces.append(Pieces.ragged(*pw.ragged_bytes(blobs)))
        data, offsets = pw.concat(pieces)
        return Pieces.ragged(data, offsets), has

    def _values(self, a: np.ndarray, kind: np.ndarray) -> list[Pieces]:
        """The JSON text of arg rows `a`'s values, one piece per kind (the others empty)."""
        total = len(a)
        out = []
        is_str = kind == ArgKind.STRING
        if is_str.any():
            out.append(_pick(self.strings, np.where(is_str, self.sval[a], 0), is_str))
        ival = self.ival[a]
        for k, values in ((ArgKind.INT, ival), (ArgKind.UINT, ival.view(np.uint64))):
            sel = np.flatnonzero(kind == k)
            if len(sel):
                out.append(_scatter(_numbers(values[sel].tolist()), sel, total))
        sel = np.flatnonzero(kind == ArgKind.DOUBLE)
        if len(sel):
            d = self.dval[a][sel]
            finite = np.isfinite(d)
            out.append(_scatter(_numbers(d[finite].tolist()), sel[finite], total))
            if not finite.all():
                out.append(_scatter(Pieces.ragged(*pw.ragged_bytes([_enc(str(v)) for v in d[~finite].tolist()])), sel[~finite], total))
        is_bool = kind == ArgKind.BOOL
        out += [Pieces.constant(b"true", total, is_bool & (ival != 0)), Pieces.constant(b"false", total, is_bool & (ival == 0))]
        is_json = ~np.isin(kind, _NUMERIC + [ArgKind.STRING])
        if is_json.any():
            out.append(_pick(self.json, np.searchsorted(self.json_codes, np.where(is_json, self.sval[a], self.json_codes[0])), is_json))
        return out

    def _span_fields(self, rows: np.ndarray, after_user: np.ndarray) -> tuple[list[Pieces], np.ndarray]:
        """The OTel span fields of slices `rows` (after their user args where `after_user`), and
        which slices have them (a span id)."""
        t = self.trace
        m = len(rows)
        sid = t.column("slices", "span_id")[rows]
        on = sid != 0
        psid = t.column("slices", "parent_span_id")[rows]
        kind = np.clip(t.column("slices", "span_kind")[rows].astype(np.int64), 0, 5)
        status = t.column("slices", "status_code")[rows].astype(np.int64)
        hexes = hex_text(t.column("slices", "trace_id_hi")[rows], t.column("slices", "trace_id_lo")[rows], sid, psid)
        pieces = [
            Pieces.constant(b'{', m, on & ~after_user), Pieces.constant(b',', m, on & after_user),
            Pieces.constant(b'"trace_id":"', m, on), Pieces.dense(hexes[:, :32], np.where(on, 32, 0).astype(np.int64)),
            Pieces.constant(b'","span_id":"', m, on), Pieces.dense(hexes[:, 32:48], np.where(on, 16, 0).astype(np.int64)),
            Pieces.constant(b'"', m, on),
            Pieces.constant(b',"parent_span_id":"', m, on & (psid != 0)),
            Pieces.dense(hexes[:, 48:], np.where(on & (psid != 0), 16, 0).astype(np.int64)),
            Pieces.constant(b'"', m, on & (psid != 0)),
            _pick(_KINDS, kind, on),
            _pick(_STATUSES, np.clip(status, 0, 2), on & (status != 0)),
        ]
        return pieces, on


def _raw_args(trace: Trace) -> tuple[np.ndarray, np.ndarray] | None:
    """The Chrome/Kineto ``args`` JSON column as (offsets per slice, bytes); None without one."""
    if not trace.has_column("slices", "args_json"):
        return None
    chunks = trace.binary_chunks("slices", "args_json")
    if len(chunks) == 1:
        return chunks[0]
    lengths = np.concatenate([np.diff(o) for o, _ in chunks])  # (an Arrow table of several chunks: one copy)
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets, np.concatenate([d[o[0] : o[-1]] for o, d in chunks])


def _scatter(p: Pieces, rows: np.ndarray, n: int) -> Pieces:
    """Pieces of some rows placed at `rows` of n (the others empty)."""
    start = np.zeros(n, np.int64)
    length = np.zeros(n, np.int64)
    start[rows] = p.start
    length[rows] = p.length
    return Pieces(p.data, start, length)


def _json_value(text: str):
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return text


def _args_dicts(trace: Trace, rows: list[int]) -> dict[int, dict]:
    """Per slice row of `rows`: its args as a dict (OTel span ids and status included)."""
    out: dict[int, dict] = {}
    wanted = set(rows)
    if trace.num_rows("args"):
        keys = trace.strings("args", "key")
        strings = trace.strings("args", "string_value")
        owner = trace.column("args", "owner")
        sel = np.flatnonzero(np.isin(owner, rows))
        for owner, k, kind, iv, dv, s in zip(
            owner[sel].tolist(),
            trace.column("args", "key")[sel].tolist(),
            trace.column("args", "kind")[sel].tolist(),
            trace.column("args", "int_value")[sel].tolist(),
            trace.column("args", "double_value")[sel].tolist(),
            trace.column("args", "string_value")[sel].tolist(),
        ):
            if kind == ArgKind.STRING:
                v = strings[int(s)]
            elif kind == ArgKind.INT:
                v = iv
            elif kind == ArgKind.UINT:
                v = iv & 0xFFFFFFFFFFFFFFFF
            elif kind == ArgKind.DOUBLE:
                v = dv if np.isfinite(dv) else str(dv)
            elif kind == ArgKind.BOOL:
                v = bool(iv)
            else:
                v = _json_value(strings[int(s)])
            out.setdefault(owner, {})[keys[k]] = v
    if trace.has_column("slices", "span_id"):
        sid = trace.column("slices", "span_id")
        hi = trace.column("slices", "trace_id_hi")
        lo = trace.column("slices", "trace_id_lo")
        psid = trace.column("slices", "parent_span_id")
        kind = trace.column("slices", "span_kind")
        status = trace.column("slices", "status_code")
        for row in sorted(r for r in wanted if sid[r] != 0):
            a = out.setdefault(row, {})
            a["trace_id"] = f"{int(hi[row]):016x}{int(lo[row]):016x}"
            a["span_id"] = f"{int(sid[row]):016x}"
            if psid[row]:
                a["parent_span_id"] = f"{int(psid[row]):016x}"
            a["otel.kind"] = SPAN_KIND_NAMES[min(max(int(kind[row]), 0), 5)]
            if status[row]:
                a["otel.status_code"] = STATUS_NAMES[min(max(int(status[row]), 0), 2)]
    return out

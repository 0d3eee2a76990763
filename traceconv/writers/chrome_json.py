"""Write a `Trace` as Chrome Trace Event JSON (for tools that only read JSON), streamed.

Times are written as exact decimal µs (3 decimals) relative to ``baseTimeNanoseconds``, the
convention of torch ≥ 2.4 Kineto traces, so absolute ns survive and our own Kineto reader reads
the file back exactly. Lanes become threads of their own (JSON has no child tracks), named like
their thread. Flows are ``s``/``f`` pairs (``f`` binds to the enclosing slice).
"""

from __future__ import annotations

from typing import BinaryIO

import msgspec
import numpy as np

from traceconv.model.layout import layout
from traceconv.model.trace import INSTANT, ArgKind, Trace, TrackKind
from traceconv.writers.ids import unique_ids
from traceconv.writers.perfetto import SPAN_KIND_NAMES, STATUS_NAMES
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
    lay = layout(ts, dur, track, parent, trace.tracks.num_rows)
    ctr_ts = trace.column("counters", "ts_ns")
    starts = np.concatenate([ts, ctr_ts])
    base = int(starts.min()) if len(starts) else 0
    base -= base % 1000

    procs = trace.processes.to_pylist()
    tracks = trace.tracks.to_pylist()
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

    names = trace.strings("slices", "name")
    cats = trace.strings("slices", "category")
    name_code = trace.column("slices", "name")
    cat_code = trace.column("slices", "category")
    args_of = _args_by_owner(trace)
    raw_args = trace.slices.column("args_json").combine_chunks() if "args_json" in trace.slices.column_names else None

    out.write(b'{"displayTimeUnit":"ns","baseTimeNanoseconds":' + str(base).encode() + b',"traceEvents":[\n')
    first = True

    def emit(line: bytes) -> None:
        nonlocal first
        out.write(line if first else b",\n" + line)
        first = False

    for line in meta:
        emit(line)
    order = np.lexsort((lay.begin_seq, ts)) if n else np.zeros(0, np.int64)
    for i in order.tolist():
        t = int(track[i])
        pid = track_pid[t]
        tid = lane_tid[(t, int(lay.lane[i]))]
        head = b'{"ph":"%s","pid":%d,"tid":%d,"ts":%s' % (b"i" if dur[i] == INSTANT else b"X", pid, tid, _us(int(ts[i]) - base))
        if dur[i] != INSTANT:
            head += b',"dur":' + _us(int(dur[i]))
        else:
            head += b',"s":"t"'
        head += b',"name":' + _enc(names[name_code[i]])
        if cats[cat_code[i]]:
            head += b',"cat":' + _enc(cats[cat_code[i]])
        a = args_of.get(i)
        if a:
            head += b',"args":' + _enc(a)
        elif raw_args is not None:
            raw = raw_args[i].as_py()
            if raw:
                head += b',"args":' + raw
        emit(head + b"}")
    # flows: s at the source slice's start, f (bound to the enclosing slice) at the destination's
    # launch → GPU op flows are written the Kineto way (cat ac2g, id = correlation)
    if trace.flows.num_rows:
        fid = trace.column("flows", "flow_id")
        corr = trace.column("slices", "correlation")
        track_proc = trace.column("tracks", "process_id")
        for f, src, dst in zip(fid.tolist(), trace.column("flows", "src").tolist(), trace.column("flows", "dst").tolist()):
            kineto = corr[src] >= 0 and corr[src] == corr[dst]
            # correlation ids repeat across ranks: namespace them by process
            cat, fid_out = (b"ac2g", int(track_proc[track[src]]) << 40 | int(corr[src])) if kineto else (b"flow", f)
            for ph, row, extra in ((b"s", src, b""), (b"f", dst, b',"bp":"e"')):
                t = int(track[row])
                emit(
                    b'{"ph":"%s","id":%d,"pid":%d,"tid":%d,"ts":%s,"name":"%s","cat":"%s"%s}'
                    % (ph, fid_out, track_pid[t], lane_tid[(t, int(lay.lane[row]))], _us(int(ts[row]) - base), cat, cat, extra)
                )
    if len(ctr_ts):
        cnames = {t["track_id"]: t["name"] for t in tracks}
        for t, c_ts, v in zip(trace.column("counters", "track_id").tolist(), ctr_ts.tolist(), trace.column("counters", "value").tolist()):
            emit(b'{"ph":"C","pid":%d,"tid":0,"ts":%s,"name":%s,"args":{"value":%s}}' % (track_pid[t], _us(c_ts - base), _enc(cnames[t]), _enc(v)))
    other = {"traceconv": run_summary(trace)}
    out.write(b'\n],"otherData":' + _enc(other) + b"}\n")
    return {"slices": int((dur != INSTANT).sum()), "instants": int((dur == INSTANT).sum()), "flows": trace.flows.num_rows}


def _args_by_owner(trace: Trace) -> dict[int, dict]:
    """Per slice row: its args as a dict (OTel span ids and status included)."""
    out: dict[int, dict] = {}
    if trace.args.num_rows:
        keys = trace.strings("args", "key")
        scol = trace.args.column("string_value").combine_chunks()
        strings = scol.dictionary.to_pylist()
        sidx = scol.indices.to_numpy(zero_copy_only=False)
        for owner, k, kind, iv, dv, s in zip(
            trace.column("args", "owner").tolist(),
            trace.column("args", "key").tolist(),
            trace.column("args", "kind").tolist(),
            trace.column("args", "int_value").tolist(),
            trace.column("args", "double_value").tolist(),
            sidx.tolist(),
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
                try:
                    v = msgspec.json.decode(strings[int(s)])
                except msgspec.DecodeError:
                    v = strings[int(s)]
            out.setdefault(owner, {})[keys[k]] = v
    if "span_id" in trace.slices.column_names:
        sid = trace.column("slices", "span_id")
        hi = trace.column("slices", "trace_id_hi")
        lo = trace.column("slices", "trace_id_lo")
        psid = trace.column("slices", "parent_span_id")
        kind = trace.column("slices", "span_kind")
        status = trace.column("slices", "status_code")
        for row in np.flatnonzero(sid != 0).tolist():
            a = out.setdefault(row, {})
            a["trace_id"] = f"{int(hi[row]):016x}{int(lo[row]):016x}"
            a["span_id"] = f"{int(sid[row]):016x}"
            if psid[row]:
                a["parent_span_id"] = f"{int(psid[row]):016x}"
            a["otel.kind"] = SPAN_KIND_NAMES[min(max(int(kind[row]), 0), 5)]
            if status[row]:
                a["otel.status_code"] = STATUS_NAMES[min(max(int(status[row]), 0), 2)]
    return out

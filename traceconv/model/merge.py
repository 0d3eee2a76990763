"""Merge several `Trace`s (ranks, files, OTel + Kineto) into one, and filter a trace by rows."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traceconv.model.trace import Trace


def _unify(table: pa.Table) -> pa.Table:
    """One chunk per column, dictionaries unified (so codes are global)."""
    return table.unify_dictionaries().combine_chunks()


def concat(traces: list[Trace]) -> Trace:
    """One trace holding all of them; ids and row references are shifted, flow ids remixed
    per input so two ranks' flow ids never collide."""
    if len(traces) == 1:
        return traces[0]
    procs, tracks, slices, args, flows, counters = [], [], [], [], [], []
    p0 = t0 = s0 = 0
    for k, t in enumerate(traces):
        procs.append(t.processes.set_column(0, "process_id", pc.add(t.processes.column("process_id"), p0).cast(pa.int32())))
        tr = t.tracks.set_column(0, "track_id", pc.add(t.tracks.column("track_id"), t0).cast(pa.int32()))
        tr = tr.set_column(1, "process_id", pc.add(tr.column("process_id"), p0).cast(pa.int32()))
        tracks.append(tr)
        sl = t.slices
        sl = sl.set_column(sl.schema.get_field_index("track_id"), "track_id", pc.add(sl.column("track_id"), t0).cast(pa.int32()))
        parent = t.column("slices", "parent")
        sl = sl.set_column(sl.schema.get_field_index("parent"), "parent", pa.array(np.where(parent >= 0, parent + s0, -1)))
        slices.append(sl)
        args.append(t.args.set_column(0, "owner", pc.add(t.args.column("owner"), s0)))
        fid = t.column("flows", "flow_id")
        with np.errstate(over="ignore"):
            fid = (fid * np.uint64(0x9E3779B97F4A7C15) + np.uint64(k + 1)) | np.uint64(1)
        flows.append(
            pa.table(
                {"flow_id": pa.array(fid, pa.uint64()), "src": pc.add(t.flows.column("src"), s0), "dst": pc.add(t.flows.column("dst"), s0)},
                schema=t.flows.schema,
            )
        )
        counters.append(t.counters.set_column(0, "track_id", pc.add(t.counters.column("track_id"), t0).cast(pa.int32())))
        p0 += t.processes.num_rows
        t0 += t.tracks.num_rows
        s0 += t.num_slices
    stats: Counter = Counter()
    warnings: list[str] = []
    sources = []
    for t in traces:
        stats.update(t.stats)
        warnings += t.warnings
        sources += t.metadata.get("sources", [])
    metadata = {"sources": sources, "format": "+".join(sorted({t.metadata.get("format", "?") for t in traces}))}
    return Trace(
        _unify(pa.concat_tables(procs)),
        _unify(pa.concat_tables(tracks)),
        _unify(pa.concat_tables(slices, promote_options="default")),
        _unify(pa.concat_tables(args)),
        _unify(pa.concat_tables(flows)),
        _unify(pa.concat_tables(counters)),
        metadata,
        stats,
        warnings,
    )


def take_slices(trace: Trace, keep: np.ndarray) -> Trace:
    """The trace restricted to the slice rows where `keep` is true (args, flows, parents follow).

    A kept slice whose parent was dropped gets parent -1; flows need both ends kept.
    """
    n = trace.num_slices
    keep = np.asarray(keep, dtype=bool)
    new_index = np.full(n + 1, -1, np.int64)  # index n maps -1 → -1
    rows = np.flatnonzero(keep)
    new_index[rows] = np.arange(len(rows))
    parent = trace.column("slices", "parent")[rows]
    slices = trace.slices.take(pa.array(rows)).set_column(
        trace.slices.schema.get_field_index("parent"), "parent", pa.array(new_index[np.where(parent >= 0, parent, n)])
    )
    owner = trace.column("args", "owner")
    a_rows = np.flatnonzero(keep[owner]) if len(owner) else np.zeros(0, np.int64)
    args = trace.args.take(pa.array(a_rows)).set_column(0, "owner", pa.array(new_index[owner[a_rows]]))
    src, dst = trace.column("flows", "src"), trace.column("flows", "dst")
    f_rows = np.flatnonzero(keep[src] & keep[dst]) if len(src) else np.zeros(0, np.int64)
    flows = trace.flows.take(pa.array(f_rows))
    flows = flows.set_column(1, "src", pa.array(new_index[src[f_rows]])).set_column(2, "dst", pa.array(new_index[dst[f_rows]]))
    stats = Counter(trace.stats)
    stats["filtered_out_slices"] += int(n - len(rows))
    return Trace(trace.processes, trace.tracks, slices, args, flows, trace.counters, dict(trace.metadata), stats, list(trace.warnings))


def shift_time(trace: Trace, offset_ns: int) -> Trace:
    """All timestamps moved by `offset_ns` (for --align)."""
    if offset_ns == 0:
        return trace
    sl = trace.slices
    sl = sl.set_column(sl.schema.get_field_index("ts_ns"), "ts_ns", pc.add(sl.column("ts_ns"), offset_ns))
    ct = trace.counters
    ct = ct.set_column(1, "ts_ns", pc.add(ct.column("ts_ns"), offset_ns))
    meta = dict(trace.metadata)
    meta["clock_offset_ns"] = meta.get("clock_offset_ns", 0) + offset_ns
    return Trace(trace.processes, trace.tracks, sl, trace.args, trace.flows, ct, meta, Counter(trace.stats), list(trace.warnings))

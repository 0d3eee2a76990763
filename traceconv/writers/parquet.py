"""The columnar model as a Parquet dataset that pyarrow, pandas, DuckDB and Spark read directly.

Layout (schema ``traceconv-dataset/1``, described in ``_traceconv.json`` at the top)::

    dataset/
      _traceconv.json                          schema version, tables, columns, ranks, stats
      processes/rank=<rank>/part-<n>.parquet   process_id, pid, name, labels, sort_index
      tracks/rank=<rank>/part-<n>.parquet      track_id, process_id, tid, name, kind, sort_index
      slices/rank=<rank>/part-<n>.parquet      slice_id + the slice columns (parent = a slice_id)
      args/rank=<rank>/part-<n>.parquet        owner (= slice_id) + typed value columns
      flows/rank=<rank>/part-<n>.parquet       flow_id, src, dst (slice ids; by the src's rank)
      counters/rank=<rank>/part-<n>.parquet    track_id, ts_ns, value

``rank`` is the process name reduced to ``[A-Za-z0-9._-]`` (so names from traces never
become arbitrary paths), hive-style so readers get it as a column. ``part-<n>`` numbers the
source (file) a worker converted; ids are made unique across parts by ``part << 40`` (slices)
and ``part << 20`` (processes, tracks), so parts written by parallel workers never collide and
joins on ids work in any engine.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np
import pyarrow as pa

from traceconv.model.arrow import SPAN_COLUMNS
from traceconv.model.trace import Trace

SCHEMA_VERSION = "traceconv-dataset/1"
META_FILE = "_traceconv.json"
TABLES = ("slices", "args", "flows", "counters")


def _pq():
    import pyarrow.parquet as pq  # only when writing a dataset

    return pq


def rank_key(name: str, process_id: int) -> str:
    """A partition value from a process name: safe characters only, never empty."""
    key = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:80]
    return key or f"process{process_id}"


def write_part(trace: Trace, directory: str, part: int = 0) -> dict[str, Any]:
    """Write one part (a worker's trace) under `directory`; returns its description for
    `write_meta`. Safe to run in parallel workers with distinct `part` numbers."""
    os.makedirs(directory, exist_ok=True)
    procs = trace.processes
    names = procs.column("name").to_pylist()
    keys = _unique_keys([rank_key(n, i) for n, i in zip(names, procs.column("process_id").to_pylist())])
    rank_of_proc = np.array(keys, dtype=object)
    p_off, s_off = part << 20, part << 40
    track_proc = trace.column("tracks", "process_id")
    slice_rank = rank_of_proc[track_proc[trace.column("slices", "track_id")]] if trace.num_slices else np.zeros(0, object)

    def shifted(table: pa.Table, columns: dict[str, int]) -> pa.Table:
        for col, off in columns.items():
            values = table.column(col).to_numpy()
            keep_neg = col in ("parent",)
            table = table.set_column(table.schema.get_field_index(col), col, pa.array(np.where(values >= 0, values + off, -1) if keep_neg else values + off))
        return table

    procs_out = shifted(procs.cast(procs.schema.set(0, pa.field("process_id", pa.int64()))), {"process_id": p_off})
    tracks_out = trace.tracks.cast(trace.tracks.schema.set(0, pa.field("track_id", pa.int64())).set(1, pa.field("process_id", pa.int64())))
    tracks_out = shifted(tracks_out, {"track_id": p_off, "process_id": p_off})
    slices = _full_slice_schema(trace.slices).add_column(0, "slice_id", pa.array(np.arange(trace.num_slices, dtype=np.int64) + s_off))
    slices = slices.set_column(slices.schema.get_field_index("track_id"), "track_id", pa.array(trace.column("slices", "track_id").astype(np.int64) + p_off))
    slices = shifted(slices, {"parent": s_off})
    args = shifted(trace.args, {"owner": s_off})
    flows = shifted(trace.flows, {"src": s_off, "dst": s_off})
    counters = trace.counters.cast(trace.counters.schema.set(0, pa.field("track_id", pa.int64())))
    counters = shifted(counters, {"track_id": p_off})
    owner = trace.column("args", "owner")
    src = trace.column("flows", "src")
    ctr_track = trace.column("counters", "track_id")
    rows = {
        "processes": _write_partitioned(procs_out, rank_of_proc, directory, "processes", part),
        "tracks": _write_partitioned(tracks_out, rank_of_proc[track_proc] if len(track_proc) else np.zeros(0, object), directory, "tracks", part),
        "slices": _write_partitioned(slices, slice_rank, directory, "slices", part),
        "args": _write_partitioned(args, slice_rank[owner] if len(owner) else np.zeros(0, object), directory, "args", part),
        "flows": _write_partitioned(flows, slice_rank[src] if len(src) else np.zeros(0, object), directory, "flows", part),
        "counters": _write_partitioned(counters, rank_of_proc[track_proc[ctr_track]] if len(ctr_track) else np.zeros(0, object), directory, "counters", part),
    }
    return {
        "part": part,
        "ranks": keys,
        "rows": rows,
        "schemas": {name: _columns(t.schema) for name, t in
                    (("processes", procs_out), ("tracks", tracks_out), ("slices", slices), ("args", args), ("flows", flows), ("counters", counters))},
        "metadata": _jsonable(trace.metadata),
        "stats": dict(trace.stats),
    }


def write_meta(directory: str, parts: list[dict[str, Any]]) -> None:
    """Describe the dataset in ``_traceconv.json`` (after all parts are written)."""
    meta = {
        "schema": SCHEMA_VERSION,
        "partitioning": "hive: rank=<process name, [A-Za-z0-9._-] only>; part-<n> = source",
        "time": "int64 ns (Unix epoch where the source had a clock)",
        "ids": "slice_id = part << 40 | row; process_id, track_id = part << 20 | index",
        "tables": parts[0]["schemas"] if parts else {},
        "parts": [{k: v for k, v in p.items() if k != "schemas"} for p in parts],
    }
    tmp = os.path.join(directory, META_FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=1, default=str)
    os.replace(tmp, os.path.join(directory, META_FILE))


def write_dataset(trace: Trace, directory: str) -> dict[str, Any]:
    """Write `trace` as a one-part dataset."""
    info = write_part(trace, directory, 0)
    write_meta(directory, [info])
    return info


def _full_slice_schema(slices: pa.Table) -> pa.Table:
    """Every part carries every slice column (nulls where its source has none), so engines that
    take the schema from one file (pyarrow datasets, DuckDB, Spark) see them all."""
    optional = dict(SPAN_COLUMNS, args_json=pa.large_binary())
    for name, typ in optional.items():
        if name not in slices.column_names:
            slices = slices.append_column(name, pa.nulls(slices.num_rows, typ))
    return slices


def _unique_keys(keys: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for k in keys:
        n = seen.get(k, 0)
        seen[k] = n + 1
        out.append(k if n == 0 else f"{k}_{n}")
    return out


def _write_partitioned(table: pa.Table, rank: np.ndarray, directory: str, name: str, part: int) -> int:
    os.makedirs(os.path.join(directory, name), exist_ok=True)
    if table.num_rows == 0:  # still a file: its schema lets readers read "no rows" (no args, no flows...)
        _pq().write_table(table, os.path.join(directory, name, f"part-{part}.parquet"))
        return 0
    order = np.argsort(rank, kind="stable")
    ranks_sorted = rank[order]
    bounds = np.flatnonzero(ranks_sorted[1:] != ranks_sorted[:-1]) + 1
    for rows in np.split(order, bounds):
        key = rank[rows[0]]
        sub = os.path.join(directory, name, f"rank={key}")
        os.makedirs(sub, exist_ok=True)
        _pq().write_table(table.take(pa.array(rows)), os.path.join(sub, f"part-{part}.parquet"))
    return table.num_rows


def _columns(schema: pa.Schema) -> list[dict[str, str]]:
    return [{"name": f.name, "type": str(f.type)} for f in schema]


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))

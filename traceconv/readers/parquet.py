"""Read a traceconv Parquet dataset (see `traceconv.writers.parquet`) back into a `Trace`,
whole or for some ranks only."""

from __future__ import annotations

import json
import os
from collections import Counter

import numpy as np
import pyarrow as pa

from traceconv.errors import MalformedTraceError, UnsupportedFormatError
from traceconv.model.arrow import ARG_SCHEMA, COUNTER_SCHEMA, FLOW_SCHEMA, PROCESS_SCHEMA, TRACK_SCHEMA
from traceconv.model.trace import Trace
from traceconv.writers.parquet import META_FILE, SCHEMA_VERSION


def is_dataset(path) -> bool:
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, META_FILE))


def _read(directory: str, name: str, ranks: list[str] | None) -> pa.Table:
    import pyarrow.dataset as ds  # pulls in pandas: kept off the conversion path
    import pyarrow.parquet as pq

    path = os.path.join(directory, name)
    files = ds.dataset(path, format="parquet", partitioning="hive")
    schema = pa.unify_schemas([files.schema] + [pq.read_schema(f) for f in files.files]) if files.files else files.schema
    dataset = ds.dataset(path, format="parquet", partitioning="hive", schema=schema)
    flt = ds.field("rank").isin(ranks) if ranks is not None and "rank" in dataset.schema.names else None
    table = dataset.to_table(filter=flt)
    if "rank" in table.column_names:
        table = table.drop_columns(["rank"])
    return table


def read_dataset(directory: str, ranks: list[str] | None = None) -> Trace:
    """The dataset as one `Trace` (ids renumbered densely); `ranks` keeps only those."""
    try:
        with open(os.path.join(directory, META_FILE)) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise MalformedTraceError(f"not a traceconv dataset ({e})", source=directory) from None
    if meta.get("schema") != SCHEMA_VERSION:
        raise UnsupportedFormatError(f"dataset schema {meta.get('schema')!r}, this traceconv reads {SCHEMA_VERSION}", source=directory)
    procs = _read(directory, "processes", ranks)
    tracks = _read(directory, "tracks", ranks)
    slices = _read(directory, "slices", ranks)
    args = _read(directory, "args", ranks)
    flows = _read(directory, "flows", ranks)
    counters = _read(directory, "counters", ranks)
    procs = procs.take(pa.array(np.argsort(procs.column("process_id").to_numpy(), kind="stable")))
    tracks = tracks.take(pa.array(np.argsort(tracks.column("track_id").to_numpy(), kind="stable")))
    slices = slices.take(pa.array(np.argsort(slices.column("slice_id").to_numpy(), kind="stable")))
    dense_proc = _Dense(procs.column("process_id").to_numpy())
    dense_track = _Dense(tracks.column("track_id").to_numpy())
    dense_slice = _Dense(slices.column("slice_id").to_numpy())
    procs = procs.set_column(0, "process_id", pa.array(dense_proc(procs.column("process_id").to_numpy()), pa.int32()))
    tracks = tracks.set_column(0, "track_id", pa.array(dense_track(tracks.column("track_id").to_numpy()), pa.int32()))
    tracks = tracks.set_column(1, "process_id", pa.array(dense_proc(tracks.column("process_id").to_numpy()), pa.int32()))
    slices = slices.drop_columns(["slice_id"])
    slices = slices.set_column(slices.schema.get_field_index("track_id"), "track_id", pa.array(dense_track(slices.column("track_id").to_numpy()), pa.int32()))
    slices = slices.set_column(slices.schema.get_field_index("parent"), "parent", pa.array(dense_slice(slices.column("parent").to_numpy())))
    owner = dense_slice(args.column("owner").to_numpy())
    args = args.filter(pa.array(owner >= 0)).set_column(0, "owner", pa.array(owner[owner >= 0]))
    src, dst = dense_slice(flows.column("src").to_numpy()), dense_slice(flows.column("dst").to_numpy())
    ok = (src >= 0) & (dst >= 0)
    flows = pa.table({"flow_id": flows.column("flow_id").filter(pa.array(ok)), "src": pa.array(src[ok]), "dst": pa.array(dst[ok])}, schema=FLOW_SCHEMA)
    counters = counters.set_column(0, "track_id", pa.array(dense_track(counters.column("track_id").to_numpy()), pa.int32()))
    stats: Counter = Counter()
    metadata: dict = {"sources": [], "dataset": directory}
    for part in meta.get("parts", []):
        stats.update(part.get("stats") or {})
        metadata["sources"] += (part.get("metadata") or {}).get("sources", [])
    return Trace(
        procs.cast(PROCESS_SCHEMA),
        tracks.cast(TRACK_SCHEMA),
        slices.unify_dictionaries().combine_chunks(),
        args.cast(ARG_SCHEMA).unify_dictionaries().combine_chunks() if args.num_rows else ARG_SCHEMA.empty_table(),
        flows,
        counters.cast(COUNTER_SCHEMA),
        metadata,
        stats,
        [],
    )


class _Dense:
    """Sparse ids → 0..n-1 in sorted order (-1 stays -1, unknown ids → -1)."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = np.asarray(ids, np.int64)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, np.int64)
        if not len(self.ids):
            return np.full(len(values), -1, np.int64)
        pos = np.minimum(np.searchsorted(self.ids, values), len(self.ids) - 1)
        return np.where((values >= 0) & (self.ids[pos] == values), pos, -1)

"""The Arrow side of the model: table schemas, and `Columns` → `pyarrow.Table`.

Imported only where an Arrow table is asked for (analyzers, Parquet, merging): a conversion
that reads with a `TraceBuilder` and writes Perfetto never loads pyarrow.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from traceconv.model.trace import Columns

_STR = pa.dictionary(pa.int32(), pa.string())

PROCESS_SCHEMA = pa.schema(
    [
        ("process_id", pa.int32()),
        ("pid", pa.int64()),
        ("name", pa.string()),
        ("labels", pa.list_(pa.string())),
        ("sort_index", pa.int64()),
    ]
)
TRACK_SCHEMA = pa.schema(
    [
        ("track_id", pa.int32()),
        ("process_id", pa.int32()),
        ("tid", pa.int64()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("sort_index", pa.int64()),
    ]
)
SPAN_COLUMNS = {
    "trace_id_hi": pa.uint64(),
    "trace_id_lo": pa.uint64(),
    "span_id": pa.uint64(),
    "parent_span_id": pa.uint64(),
    "span_kind": pa.int8(),
    "status_code": pa.int8(),
}
ARG_SCHEMA = pa.schema(
    [
        ("owner", pa.int64()),
        ("key", _STR),
        ("kind", pa.int8()),
        ("int_value", pa.int64()),
        ("double_value", pa.float64()),
        ("string_value", _STR),
    ]
)
FLOW_SCHEMA = pa.schema([("flow_id", pa.uint64()), ("src", pa.int64()), ("dst", pa.int64())])
COUNTER_SCHEMA = pa.schema([("track_id", pa.int32()), ("ts_ns", pa.int64()), ("value", pa.float64())])
SCHEMAS = {"processes": PROCESS_SCHEMA, "tracks": TRACK_SCHEMA, "args": ARG_SCHEMA, "flows": FLOW_SCHEMA, "counters": COUNTER_SCHEMA}


def dict_array(codes: np.ndarray, values: list[str]) -> pa.DictionaryArray:
    """Dictionary-encoded strings; code -1 is null."""
    codes = np.asarray(codes, dtype=np.int32)
    mask = codes < 0
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32(), mask=mask if mask.any() else None), pa.array(values, pa.string()))


def to_arrow(name: str, table: Columns) -> pa.Table:
    """The Arrow table of the model's table `name` (``slices``, ``args``, …) held as `table`."""
    schema = SCHEMAS.get(name)
    types = {f.name: f.type for f in schema} if schema is not None else SPAN_COLUMNS
    cols: dict[str, pa.Array] = {}
    for key, values in table.columns.items():
        if key in table.dictionaries:
            cols[key] = dict_array(values, table.dictionaries[key])
        else:
            cols[key] = pa.array(values, types.get(key))
    for key, (offsets, data) in table.binary.items():
        cols[key] = pa.Array.from_buffers(pa.large_binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    return pa.table(cols, schema=schema) if schema is not None else pa.table(cols)

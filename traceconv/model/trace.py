"""The columnar trace model every reader fills and every writer and analyzer reads.

A `Trace` is a handful of tables keyed by integer ids, with int64 nanosecond timestamps (Unix
epoch where the source has one):

* ``processes``  process_id, pid, name, labels, sort_index
* ``tracks``     track_id, process_id, tid, name, kind (``thread`` | ``gpu_stream`` | ``track`` |
                 ``counter``), sort_index
* ``slices``     ts_ns, dur_ns (``-1`` marks an instant), track_id, name, category, parent
                 (row index of the enclosing/owning slice, ``-1`` if none), correlation
                 (launch↔GPU op id, ``-1`` if none); for OTel spans trace_id_hi/lo, span_id,
                 parent_span_id, span_kind, status_code; for Chrome/Kineto events args_json
                 (the event's ``args`` object, byte for byte as in the file)
* ``args``       owner (slice row), key, kind (see `ArgKind`), int_value, double_value,
                 string_value — one row per attribute
* ``flows``      flow_id, src, dst (slice rows): causal arrows such as launch → kernel
* ``counters``   track_id, ts_ns, value

Each table is an Arrow table (``trace.slices``, …). A trace made by a `TraceBuilder` holds
its tables as numpy `Columns` and makes the Arrow table the first time one is asked for:
`Trace.column`, `strings`, `rows`, `num_rows` and `has_column` read either without Arrow, so a
conversion that only uses them never imports pyarrow (~50 MB and ~0.1 s).

``metadata`` holds per-source facts (file names, ranks, base times), ``stats`` counts what was
repaired or dropped on the way in, by reason (like Perfetto's ``stats`` table), and
``warnings`` says it in words.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable
from enum import IntEnum
from typing import Any

import numpy as np


class ArgKind(IntEnum):
    STRING = 0
    INT = 1
    DOUBLE = 2
    BOOL = 3
    JSON = 4  # string_value holds compact JSON text of an array or object
    UINT = 5  # int_value holds the bit pattern of a uint64


class TrackKind:
    THREAD = "thread"
    GPU_STREAM = "gpu_stream"
    TRACK = "track"
    COUNTER = "counter"


INSTANT = -1  # dur_ns of an instant event

# stats keys that mean the input was damaged (what `--strict` refuses); the others are facts
DAMAGE_STATS = frozenset(
    [
        "otlp_json_bad_line",
        "otlp_json_truncated_last_line",
        "otlp_proto_truncated_tail",
        "json_truncated_tail",
        "compressed_stream_damaged",
        "kineto_truncated_events_lost",
        "kineto_bad_events",
        "kineto_stray_text",
        # repaired or skipped on the way in (tests/bad_inputs/README.md lists the cases)
        "otlp_json_invalid_utf8",
        "otlp_json_nonstandard",
        "otlp_json_bad_span",
        "otlp_json_span_repaired",
        "otlp_json_damaged_line_salvaged",
        "otlp_proto_bad_message",
        "span_bad_time",
        "span_event_bad_time",
        "kineto_events_repaired",
        "kineto_bad_header",
        "kineto_bad_base_time",
        "nsys_non_numeric_values",
        "nsys_unreadable_start_dropped",
    ]
)

TABLES = ("processes", "tracks", "slices", "args", "flows", "counters")
_ROW_REFS = ("parent", "correlation", "owner")  # (the columns merged traces fill with -1)
_SPAN_DTYPES = {"trace_id_hi": "u8", "trace_id_lo": "u8", "span_id": "u8", "parent_span_id": "u8", "span_kind": "i1", "status_code": "i1"}


class Columns:
    """A model table as numpy arrays, without Arrow: ``columns`` name → array (or list, for
    the small process and track tables; dictionary-encoded columns hold int32 codes, -1 for
    none), ``dictionaries`` name → the codes' strings, ``binary`` name → (int64 offsets,
    bytes) of a variable-length binary column."""

    __slots__ = ("binary", "columns", "dictionaries")

    def __init__(self, columns: dict[str, Any], dictionaries: dict[str, list[str]] | None = None,
                 binary: dict[str, tuple[np.ndarray, Any]] | None = None) -> None:
        self.columns = columns
        self.dictionaries = dictionaries or {}
        self.binary = binary or {}

    @property
    def num_rows(self) -> int:
        for values in self.columns.values():
            return len(values)
        for offsets, _ in self.binary.values():
            return len(offsets) - 1
        return 0

    @property
    def column_names(self) -> list[str]:
        return list(self.columns) + list(self.binary)


class _Table:
    """A `Trace` table attribute: the Arrow table, made from `Columns` at first use."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, trace: Trace | None, owner: type) -> Any:
        if trace is None:
            return self
        table = trace._tables[self.name]
        if isinstance(table, Columns):
            from traceconv.model.arrow import to_arrow

            table = trace._tables[self.name] = to_arrow(self.name, table)
        return table

    def __set__(self, trace: Trace, table: Any) -> None:
        trace._tables[self.name] = table


class Trace:
    """The tables (see the module's docstring) and what was learned on the way in. A table is an
    Arrow table or, until something asks for the Arrow one, numpy `Columns`."""

    processes = _Table()
    tracks = _Table()
    slices = _Table()
    args = _Table()
    flows = _Table()
    counters = _Table()

    def __init__(self, processes: Any, tracks: Any, slices: Any, args: Any, flows: Any, counters: Any,
                 metadata: dict[str, Any] | None = None, stats: Counter | None = None, warnings: list[str] | None = None) -> None:
        self._tables: dict[str, Any] = dict(zip(TABLES, (processes, tracks, slices, args, flows, counters)))
        self.metadata: dict[str, Any] = {} if metadata is None else metadata
        self.stats: Counter = Counter() if stats is None else stats
        self.warnings: list[str] = [] if warnings is None else warnings

    def __repr__(self) -> str:
        return f"Trace({self.num_slices} slices, {self.num_rows('tracks')} tracks, {self.num_rows('args')} args)"

    def replace(self, **tables: Any) -> Trace:
        """A copy with some tables replaced (metadata, stats and warnings shared)."""
        return Trace(*(tables.get(name, self._tables[name]) for name in TABLES), self.metadata, self.stats, self.warnings)

    @property
    def num_slices(self) -> int:
        return self.num_rows("slices")

    @property
    def damage(self) -> int:
        """How many damaged-input items were skipped or repaired (see `DAMAGE_STATS`)."""
        return sum(v for k, v in self.stats.items() if k in DAMAGE_STATS)

    def num_rows(self, table: str) -> int:
        return self._tables[table].num_rows

    def has_column(self, table: str, name: str) -> bool:
        return name in self._tables[table].column_names

    def column(self, table: str, name: str) -> np.ndarray:
        """A column as numpy (dictionary columns give their int32 codes; in merged traces,
        missing OTel/Kineto-only values read as 0, or -1 for row references). A column of one
        chunk without nulls is the table's own memory (read-only), not a copy."""
        t = self._tables[table]
        if isinstance(t, Columns):
            values = t.columns[name]
            if isinstance(values, np.ndarray):
                view = values.view()
                view.flags.writeable = False  # (the table's own memory, as Arrow's would be)
                return view
            out = np.empty(len(values), object)  # (strings, label lists)
            for i, v in enumerate(values):
                out[i] = v
            return out
        import pyarrow as pa

        chunked = t.column(name)
        col = chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()
        if pa.types.is_dictionary(col.type):
            col = col.indices
        if col.null_count and pa.types.is_integer(col.type):
            col = col.fill_null(-1 if name in _ROW_REFS or pa.types.is_dictionary(t.schema.field(name).type) else 0)
        return col.to_numpy(zero_copy_only=False)

    def strings(self, table: str, name: str) -> list[str]:
        """The dictionary of a dictionary-encoded column (index = code)."""
        t = self._tables[table]
        if isinstance(t, Columns):
            return list(t.dictionaries[name])
        return t.column(name).combine_chunks().dictionary.to_pylist()

    def rows(self, table: str) -> list[dict[str, Any]]:
        """The rows of a (small) table as dicts."""
        t = self._tables[table]
        if isinstance(t, Columns):
            names = list(t.columns)
            return [dict(zip(names, row)) for row in zip(*(v.tolist() if isinstance(v, np.ndarray) else v for v in t.columns.values()))]
        return t.to_pylist()

    def binary_chunks(self, table: str, name: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """A binary column as (int64 offsets, uint8 bytes) pairs, one per chunk, without copying
        the bytes."""
        t = self._tables[table]
        if isinstance(t, Columns):
            offsets, data = t.binary[name]
            return [(offsets, np.frombuffer(data, np.uint8))]
        import pyarrow as pa

        out = []
        for chunk in t.column(name).chunks:
            _, offs, data = chunk.buffers()
            otype = np.int64 if pa.types.is_large_binary(chunk.type) else np.int32
            offsets = np.frombuffer(offs, otype)[chunk.offset : chunk.offset + len(chunk) + 1].astype(np.int64)
            out.append((offsets, np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)))
        return out

    def validate(self) -> Trace:
        """Check ids and row references once, so writers and analyzers need no defensive code."""
        n = self.num_slices
        tracks = self.column("tracks", "track_id")
        if len(tracks) and not np.array_equal(tracks, np.arange(len(tracks))):
            raise ValueError("track ids must be 0..n-1 in order")
        if n:
            tid = self.column("slices", "track_id")
            if tid.min() < 0 or tid.max() >= len(tracks):
                raise ValueError("slice references a missing track")
            parent = self.column("slices", "parent")
            if parent.max() >= n or parent.min() < -1:
                raise ValueError("slice parent out of range")
            dur = self.column("slices", "dur_ns")
            if (dur < INSTANT).any():
                raise ValueError("negative duration")
        for table, cols in (("args", ("owner",)), ("flows", ("src", "dst"))):
            for c in cols:
                values = self.column(table, c)
                if len(values) and (values.min() < 0 or values.max() >= n):
                    raise ValueError(f"{table}.{c} out of range")
        return self


class StringPool:
    """Strings to dense int codes, in first-seen order."""

    __slots__ = ("codes", "values")

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.values: list[str] = []

    def code(self, s: str) -> int:
        c = self.codes.get(s)
        if c is None:
            c = self.codes[s] = len(self.values)
            self.values.append(s)
        return c

    def codes_of(self, values: list) -> list[int]:
        """Codes of many values at once (non-strings as their str), new ones added in order of
        appearance: one C-level lookup pass, Python only for the misses."""
        codes = list(map(self.codes.get, values))
        if None in codes:
            for k, c in enumerate(codes):
                if c is None:
                    v = values[k]
                    codes[k] = self.code(v if isinstance(v, str) else str(v))
        return codes

    def __len__(self) -> int:
        return len(self.values)


def _np(a: array, dtype: str) -> np.ndarray:
    return np.frombuffer(a, dtype=dtype) if len(a) else np.zeros(0, dtype=dtype)


class TraceBuilder:
    """Append-only columns that readers fill; `build()` turns them into a `Trace`.

    Readers append to the `array` columns directly on their hot paths (no per-event objects).
    """

    def __init__(self, span_columns: bool = False) -> None:
        self.names = StringPool()
        self.categories = StringPool()
        self.arg_keys = StringPool()
        self.arg_strings = StringPool()
        self.processes: list[tuple[int, str, list[str], int]] = []
        self.tracks: list[tuple[int, int, str, str, int]] = []
        # slices
        self.ts = array("q")
        self.dur = array("q")
        self.track = array("i")
        self.name = array("i")
        self.cat = array("i")
        self.parent = array("q")
        self.correlation = array("q")
        self.span: dict[str, array] | None = None
        self.args_json: bytearray | None = None  # raw JSON args per slice (Chrome/Kineto)
        self.args_end = array("q")
        if span_columns:
            self.span = {
                "trace_id_hi": array("Q"),
                "trace_id_lo": array("Q"),
                "span_id": array("Q"),
                "parent_span_id": array("Q"),
                "span_kind": array("b"),
                "status_code": array("b"),
            }
        # args
        self.a_owner = array("q")
        self.a_key = array("i")
        self.a_kind = array("b")
        self.a_int = array("q")
        self.a_dbl = array("d")
        self.a_str = array("i")
        # flows, counters
        self.f_id = array("Q")
        self.f_src = array("q")
        self.f_dst = array("q")
        self.c_track = array("i")
        self.c_ts = array("q")
        self.c_value = array("d")
        self.metadata: dict[str, Any] = {}
        self.stats: Counter = Counter()
        self.warnings: list[str] = []

    # -- structure -------------------------------------------------------------------------
    def add_process(self, pid: int, name: str, labels: Iterable[str] = (), sort_index: int = 0) -> int:
        self.processes.append((pid, name, list(labels), sort_index))
        return len(self.processes) - 1

    def add_track(self, process_id: int, tid: int, name: str, kind: str = TrackKind.THREAD, sort_index: int = 0) -> int:
        self.tracks.append((process_id, tid, name, kind, sort_index))
        return len(self.tracks) - 1

    # -- events ----------------------------------------------------------------------------
    def add_slice(
        self, ts: int, dur: int, track: int, name: str, category: str = "", parent: int = -1, correlation: int = -1
    ) -> int:
        self.ts.append(ts)
        self.dur.append(dur)
        self.track.append(track)
        self.name.append(self.names.code(name))
        self.cat.append(self.categories.code(category))
        self.parent.append(parent)
        self.correlation.append(correlation)
        return len(self.ts) - 1

    def add_arg(self, owner: int, key: str, value: Any) -> None:
        """Add one attribute, typed by its Python value (lists/dicts become JSON)."""
        kind, i, d, s = typed_value(value)
        self.a_owner.append(owner)
        self.a_key.append(self.arg_keys.code(key))
        self.a_kind.append(kind)
        self.a_int.append(i)
        self.a_dbl.append(d)
        self.a_str.append(self.arg_strings.code(s) if s is not None else -1)

    def add_flow(self, flow_id: int, src: int, dst: int) -> None:
        self.f_id.append(flow_id)
        self.f_src.append(src)
        self.f_dst.append(dst)

    def add_counter(self, track: int, ts: int, value: float) -> None:
        self.c_track.append(track)
        self.c_ts.append(ts)
        self.c_value.append(value)

    @property
    def num_slices(self) -> int:
        return len(self.ts)

    # -- result ----------------------------------------------------------------------------
    def build(self) -> Trace:
        processes = _small_table("process_id", self.processes, {"pid": "i8", "name": None, "labels": None, "sort_index": "i8"})
        tracks = _small_table("track_id", self.tracks, {"process_id": "i4", "tid": "i8", "name": None, "kind": None, "sort_index": "i8"})
        cols: dict[str, np.ndarray] = {
            "ts_ns": _np(self.ts, "i8"),
            "dur_ns": _np(self.dur, "i8"),
            "track_id": _np(self.track, "i4"),
            "name": _np(self.name, "i4"),
            "category": _np(self.cat, "i4"),
            "parent": _np(self.parent, "i8"),
            "correlation": _np(self.correlation, "i8"),
        }
        if self.span is not None:
            for key, dtype in _SPAN_DTYPES.items():
                cols[key] = _np(self.span[key], dtype)
        binary = {}
        if self.args_json is not None:
            ends = _np(self.args_end, "i8")
            offsets = np.zeros(len(ends) + 1, np.int64)
            offsets[1:] = ends
            binary["args_json"] = (offsets, self.args_json)
        slices = Columns(cols, {"name": self.names.values, "category": self.categories.values}, binary)
        args = Columns(
            {
                "owner": _np(self.a_owner, "i8"),
                "key": _np(self.a_key, "i4"),
                "kind": _np(self.a_kind, "i1"),
                "int_value": _np(self.a_int, "i8"),
                "double_value": _np(self.a_dbl, "f8"),
                "string_value": _np(self.a_str, "i4"),
            },
            {"key": self.arg_keys.values, "string_value": self.arg_strings.values},
        )
        flows = Columns({"flow_id": _np(self.f_id, "u8"), "src": _np(self.f_src, "i8"), "dst": _np(self.f_dst, "i8")})
        counters = Columns({"track_id": _np(self.c_track, "i4"), "ts_ns": _np(self.c_ts, "i8"), "value": _np(self.c_value, "f8")})
        return Trace(processes, tracks, slices, args, flows, counters, dict(self.metadata), Counter(self.stats), list(self.warnings))


def _small_table(id_name: str, rows: list[tuple], dtypes: dict[str, str | None]) -> Columns:
    """A table of a few rows (processes, tracks) from their tuples, numbered 0..n-1 in `id_name`:
    numeric columns as numpy (`dtypes`), the others (strings, label lists) as lists."""
    values = [list(c) for c in zip(*rows)] if rows else [[] for _ in dtypes]
    columns: dict[str, Any] = {id_name: np.arange(len(rows), dtype=np.int32)}
    for (name, dtype), column in zip(dtypes.items(), values):
        columns[name] = np.array(column, dtype) if dtype else column
    return Columns(columns)


def typed_value(value: Any) -> tuple[int, int, float, str | None]:
    """(kind, int_value, double_value, string_value) for a Python attribute value."""
    if isinstance(value, bool):
        return ArgKind.BOOL, int(value), 0.0, None
    if isinstance(value, int):
        if -(1 << 63) <= value < (1 << 63):
            return ArgKind.INT, value, 0.0, None
        if 0 <= value < (1 << 64):
            return ArgKind.UINT, value - (1 << 64) if value >= (1 << 63) else value, 0.0, None
        return ArgKind.STRING, 0, 0.0, str(value)
    if isinstance(value, float):
        return ArgKind.DOUBLE, 0, value, None
    if isinstance(value, str):
        return ArgKind.STRING, 0, 0.0, value
    if value is None:
        return ArgKind.JSON, 0, 0.0, "null"
    import json

    return ArgKind.JSON, 0, 0.0, json.dumps(value, separators=(",", ":"), default=str)

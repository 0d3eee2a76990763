"""Fast path for Collector JSON Lines: Arrow's C++ JSON reader plus vectorised columns.

The file is parsed in blocks by `pyarrow.json` against the exact OTLP/JSON trace schema and
every field becomes numpy columns without touching spans one by one in Python. The schema is
strict: an unknown field, a number where OTLP writes a string, a truncated or damaged line —
anything unusual — makes `read_jsonl_arrow` cut the collector's columns back to where they were
and return None, and the caller falls back to the line-by-line msgspec reader, which salvages
and reports damage. Batches are appended as they come (no staged copy of the whole file).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from traceconv.model.trace import ArgKind
from traceconv.readers.otel import SpanCollector, parse_hex_or_base64

_scalar = [("stringValue", pa.string()), ("boolValue", pa.bool_()), ("intValue", pa.string()), ("doubleValue", pa.float64()), ("bytesValue", pa.string())]
_inner = pa.struct(_scalar)
_value = pa.struct(
    _scalar
    + [
        ("arrayValue", pa.struct([("values", pa.list_(_inner))])),
        ("kvlistValue", pa.struct([("values", pa.list_(pa.struct([("key", pa.string()), ("value", _inner)])))])),
    ]
)
_kv = pa.list_(pa.struct([("key", pa.string()), ("value", _value)]))
_span = pa.struct(
    [
        ("traceId", pa.string()),
        ("spanId", pa.string()),
        ("traceState", pa.string()),
        ("parentSpanId", pa.string()),
        ("flags", pa.int64()),
        ("name", pa.string()),
        ("kind", pa.int32()),
        ("startTimeUnixNano", pa.string()),
        ("endTimeUnixNano", pa.string()),
        ("attributes", _kv),
        ("droppedAttributesCount", pa.int64()),
        ("events", pa.list_(pa.struct([("timeUnixNano", pa.string()), ("name", pa.string()), ("attributes", _kv), ("droppedAttributesCount", pa.int64())]))),
        ("droppedEventsCount", pa.int64()),
        (
            "links",
            pa.list_(
                pa.struct(
                    [("traceId", pa.string()), ("spanId", pa.string()), ("traceState", pa.string()), ("attributes", _kv),
                     ("droppedAttributesCount", pa.int64()), ("flags", pa.int64())]
                )
            ),
        ),
        ("droppedLinksCount", pa.int64()),
        ("status", pa.struct([("message", pa.string()), ("code", pa.int32())])),
    ]
)
_scope = pa.struct([("name", pa.string()), ("version", pa.string()), ("attributes", _kv), ("droppedAttributesCount", pa.int64())])
SCHEMA = pa.schema(
    [
        (
            "resourceSpans",
            pa.list_(
                pa.struct(
                    [
                        ("resource", pa.struct([("attributes", _kv), ("droppedAttributesCount", pa.int64())])),
                        ("scopeSpans", pa.list_(pa.struct([("scope", _scope), ("spans", pa.list_(_span)), ("schemaUrl", pa.string())]))),
                        ("schemaUrl", pa.string()),
                    ]
                )
            ),
        )
    ]
)
BLOCK = 1 << 21

_NIBBLE = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _NIBBLE[_c] = 10 + _i


class _Fallback(Exception):
    pass


def read_jsonl_arrow(path: str, col: SpanCollector) -> int | None:
    """Read a whole JSONL dump into `col`; None (its columns as they were) if the fast path can't."""
    opts = pj.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="error", newlines_in_values=False)
    appender = _Appender(col)
    try:
        reader = pj.open_json(path, read_options=pj.ReadOptions(block_size=BLOCK, use_threads=True), parse_options=opts)
        for batch in reader:
            appender.add(batch)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, _Fallback, OverflowError, ValueError):
        appender.rollback()
        return None
    return appender.n


def _offsets_lengths(list_array: pa.Array) -> np.ndarray:
    if list_array.null_count == 0:
        return np.diff(list_array.offsets.to_numpy()).astype(np.int64)
    lengths = pc.list_value_length(list_array).fill_null(0)
    return lengths.to_numpy(zero_copy_only=False).astype(np.int64)


def _flat(list_array: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Flattened values and, for each value, the index of the list it came from."""
    lengths = _offsets_lengths(list_array)
    parent = np.repeat(np.arange(len(list_array), dtype=np.int64), lengths)
    return list_array.flatten(), parent


def _hex_ids(arr: pa.Array, nbytes: int) -> tuple[np.ndarray, np.ndarray]:
    """(high, low) uint64 of hex ids; null/empty → 0. Other encodings go through Python."""
    n = len(arr)
    width = 2 * nbytes
    hi = np.zeros(n, np.uint64)
    lo = np.zeros(n, np.uint64)
    if n == 0:
        return hi, lo
    arr = _filled(arr, "")
    lengths = pc.binary_length(arr).to_numpy(zero_copy_only=False)
    ok = lengths == width
    if ok.any():
        # every value `width` long (others replaced by zeros): the text is one (n, width) matrix
        fixed = arr if ok.all() else pc.if_else(pa.array(ok), arr, pa.scalar("0" * width, arr.type))
        buffers = fixed.buffers()
        first = int(np.frombuffer(buffers[1], dtype=np.int64 if pa.types.is_large_string(fixed.type) else np.int32)[fixed.offset])
        nib = _NIBBLE[np.frombuffer(buffers[2], dtype=np.uint8)[first : first + n * width].reshape(n, width)]
        ok &= (nib != 255).all(axis=1)
        words = np.ascontiguousarray((nib[:, 0::2] << 4) | nib[:, 1::2]).view(">u8").astype(np.uint64)
        if nbytes == 16:
            hi = np.where(ok, words[:, 0], np.uint64(0))
        lo = np.where(ok, words[:, -1], np.uint64(0))
    other = np.flatnonzero(~ok & (lengths > 0))
    if len(other):
        values = arr.take(pa.array(other)).to_pylist()
        for r, v in zip(other.tolist(), values):
            x = parse_hex_or_base64(v, nbytes)
            if x is None:
                raise _Fallback  # let the robust reader count the bad id
            hi[r] = x >> 64
            lo[r] = x & 0xFFFFFFFFFFFFFFFF
    return hi, lo


def _codes(arr: pa.Array, pool) -> np.ndarray:
    """Pool codes of a string array (null → -1)."""
    if len(arr) == 0:
        return np.zeros(0, np.int32)
    enc = pc.dictionary_encode(arr)
    mapping = np.array([pool.code(s) for s in enc.dictionary.to_pylist()] + [-1], dtype=np.int32)
    idx = enc.indices.fill_null(len(enc.dictionary)).to_numpy(zero_copy_only=False)
    return mapping[idx]


def _ints(arr: pa.Array) -> np.ndarray:
    if arr.null_count:
        arr = arr.fill_null("0")
    return pc.cast(arr, pa.int64()).to_numpy(zero_copy_only=False)


def _filled(arr: pa.Array, value) -> pa.Array:
    return arr.fill_null(value) if arr.null_count else arr


class _Appender:
    """Batches converted to numpy and appended to the collector's columns, which `rollback`
    cuts back to where they were (string pools and resources keep what was added)."""

    def __init__(self, col: SpanCollector) -> None:
        self.col = col
        self.n = 0
        self.n_events = 0
        self.n_links = 0
        self.columns = _columns(col)
        self.lengths = [len(a) for a in self.columns]
        self.row0, self.ev0, self.link0 = len(col.b.ts), len(col.ev_ts), len(col.l_row)

    def rollback(self) -> None:
        for a, n in zip(self.columns, self.lengths):
            del a[n:]
        col = self.col
        for d, first in ((col.status_message, self.row0), (col.l_attrs, self.link0)):
            for k in [k for k in d if k >= first]:
                del d[k]

    def add(self, batch: pa.RecordBatch) -> None:
        col = self.col
        b = col.b
        rs, _ = _flat(batch.column(0))
        res_attrs = rs.field("resource").field("attributes")
        res_idx = np.array([col.add_resource(_pairs(a)) for a in res_attrs.to_pylist()], dtype=np.int32)
        ss, ss_rs = _flat(rs.field("scopeSpans"))
        scope_names = _filled(ss.field("scope").field("name"), "").to_pylist()
        ss_cat = np.array([b.categories.code(s or "otel") for s in scope_names], dtype=np.int32)
        spans, sp_ss = _flat(ss.field("spans"))
        m = len(spans)
        base = self.n
        p: dict[str, Any] = {"m": m}
        p["trace_hi"], p["trace_lo"] = _hex_ids(spans.field("traceId"), 16)
        p["span_id"] = _hex_ids(spans.field("spanId"), 8)[1]
        p["parent_span_id"] = _hex_ids(spans.field("parentSpanId"), 8)[1]
        p["kind"] = np.clip(_filled(spans.field("kind"), 0).to_numpy(zero_copy_only=False), 0, 127).astype(np.int8)
        status = spans.field("status")
        p["status"] = np.clip(_filled(status.field("code"), 0).to_numpy(zero_copy_only=False), 0, 127).astype(np.int8)
        msg = _filled(status.field("message"), "")
        msg_rows = np.flatnonzero(pc.utf8_length(msg).to_numpy(zero_copy_only=False) > 0)
        p["status_message"] = dict(zip((msg_rows + base).tolist(), msg.take(pa.array(msg_rows)).to_pylist())) if len(msg_rows) else {}
        p["start"] = _ints(spans.field("startTimeUnixNano"))
        p["end"] = _ints(spans.field("endTimeUnixNano"))
        p["name"] = _codes(_filled(spans.field("name"), ""), b.names)
        p["cat"] = ss_cat[sp_ss] if m else np.zeros(0, np.int32)
        p["resource"] = res_idx[ss_rs[sp_ss]] if m else np.zeros(0, np.int32)
        # attributes of spans (owner = span row) and of events (owner = event index)
        p["args"] = _attr_columns(spans.field("attributes"), base, col)
        extra = []
        for key, field, kind in (("otel.trace_state", "traceState", "str"), ("otel.flags", "flags", "int"),
                                 ("otel.dropped_attributes_count", "droppedAttributesCount", "int"),
                                 ("otel.dropped_events_count", "droppedEventsCount", "int"),
                                 ("otel.dropped_links_count", "droppedLinksCount", "int")):
            extra.append(_field_args(spans.field(field), key, kind, base, b))
        p["extra_args"] = extra
        evs, ev_sp = _flat(spans.field("events"))
        p["ev_span"] = ev_sp + base
        p["ev_ts"] = _ints(evs.field("timeUnixNano"))
        p["ev_name"] = _codes(_filled(evs.field("name"), ""), b.names)
        p["ev_args"] = _attr_columns(evs.field("attributes"), self.n_events, col)
        links, l_sp = _flat(spans.field("links"))
        p["l_row"] = l_sp + base
        p["l_hi"], p["l_lo"] = _hex_ids(links.field("traceId"), 16)
        p["l_sid"] = _hex_ids(links.field("spanId"), 8)[1]
        l_attr_len = _offsets_lengths(links.field("attributes"))
        p["l_attrs"] = {}
        for k in np.flatnonzero(l_attr_len).tolist():
            p["l_attrs"][self.n_links + k] = _pairs(links.field("attributes")[k].as_py())
        self._append(p)
        self.n += m
        self.n_events += len(evs)
        self.n_links += len(links)

    def _append(self, p: dict[str, Any]) -> None:
        col = self.col
        b = col.b
        row0, ev0, link0 = self.row0, self.ev0, self.link0  # (p's rows count from this reader's first)
        col.trace_hi.frombytes(p["trace_hi"].tobytes())
        col.trace_lo.frombytes(p["trace_lo"].tobytes())
        col.span_id.frombytes(p["span_id"].tobytes())
        col.parent_span_id.frombytes(p["parent_span_id"].tobytes())
        col.kind.frombytes(p["kind"].tobytes())
        col.status.frombytes(p["status"].tobytes())
        col.status_message.update({row0 + r: v for r, v in p["status_message"].items()})
        b.ts.frombytes(p["start"].tobytes())
        col.end.frombytes(p["end"].tobytes())
        b.name.frombytes(p["name"].astype(np.int32).tobytes())
        b.cat.frombytes(p["cat"].astype(np.int32).tobytes())
        b.correlation.frombytes(np.full(p["m"], -1, np.int64).tobytes())
        col.resource.frombytes(p["resource"].astype(np.int32).tobytes())
        for args in [p["args"]] + p["extra_args"]:
            _append_args(b.a_owner, b.a_key, b.a_kind, b.a_int, b.a_dbl, b.a_str, args, row0)
        col.ev_span.frombytes((p["ev_span"] + row0).tobytes())
        col.ev_ts.frombytes(p["ev_ts"].tobytes())
        col.ev_name.frombytes(p["ev_name"].astype(np.int32).tobytes())
        e = col.ev_args
        _append_args(e.owner, e.key, e.kind, e.int, e.dbl, e.str, p["ev_args"], ev0)
        col.l_row.frombytes((p["l_row"] + row0).tobytes())
        col.l_hi.frombytes(p["l_hi"].tobytes())
        col.l_lo.frombytes(p["l_lo"].tobytes())
        col.l_sid.frombytes(p["l_sid"].tobytes())
        col.l_attrs.update({link0 + k: v for k, v in p["l_attrs"].items()})


def _columns(col: SpanCollector) -> list:
    """Every array column `_Appender` appends to."""
    b, e = col.b, col.ev_args
    return [col.trace_hi, col.trace_lo, col.span_id, col.parent_span_id, col.kind, col.status, b.ts, col.end, b.name, b.cat,
            b.correlation, col.resource, b.a_owner, b.a_key, b.a_kind, b.a_int, b.a_dbl, b.a_str, col.ev_span, col.ev_ts,
            col.ev_name, e.owner, e.key, e.kind, e.int, e.dbl, e.str, col.l_row, col.l_hi, col.l_lo, col.l_sid]


def _append_args(owner, key, kind, int_, dbl, str_, a: dict[str, np.ndarray], shift: int) -> None:
    if not len(a["owner"]):
        return
    owner.frombytes((a["owner"] + shift).astype(np.int64).tobytes())
    key.frombytes(a["key"].astype(np.int32).tobytes())
    kind.frombytes(a["kind"].astype(np.int8).tobytes())
    int_.frombytes(a["int"].astype(np.int64).tobytes())
    dbl.frombytes(a["dbl"].astype(np.float64).tobytes())
    str_.frombytes(a["str"].astype(np.int32).tobytes())


def _pairs(kvs) -> list[tuple[str, Any]]:
    return [(kv["key"], _py_value(kv["value"])) for kv in kvs or []]


def _py_value(v: dict | None) -> Any:
    if v is None:
        return None
    if v.get("stringValue") is not None:
        return v["stringValue"]
    if v.get("intValue") is not None:
        return int(v["intValue"])
    if v.get("doubleValue") is not None:
        return v["doubleValue"]
    if v.get("boolValue") is not None:
        return v["boolValue"]
    if v.get("arrayValue") is not None:
        return [_py_value(x) for x in v["arrayValue"]["values"] or []]
    if v.get("kvlistValue") is not None:
        return {kv["key"]: _py_value(kv["value"]) for kv in v["kvlistValue"]["values"] or []}
    if v.get("bytesValue") is not None:
        return v["bytesValue"]
    return None


def _field_args(arr: pa.Array, key: str, kind: str, base: int, b) -> dict[str, np.ndarray]:
    """Args from a per-span scalar field, where it is set (non-empty / non-zero)."""
    if kind == "str":
        arr = _filled(arr, "")
        rows = np.flatnonzero(pc.utf8_length(arr).to_numpy(zero_copy_only=False) > 0)
        vals = arr.take(pa.array(rows))
        str_codes = _codes(vals, b.arg_strings)
        ints = np.zeros(len(rows), np.int64)
        k = ArgKind.STRING
    else:
        values = _filled(arr, 0).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(values != 0)
        ints = values[rows].astype(np.int64)
        str_codes = np.full(len(rows), -1, np.int32)
        k = ArgKind.INT
    return {
        "owner": rows + base,
        "key": np.full(len(rows), b.arg_keys.code(key), np.int32),
        "kind": np.full(len(rows), k, np.int8),
        "int": ints,
        "dbl": np.zeros(len(rows), np.float64),
        "str": str_codes,
    }


def _attr_columns(list_array: pa.Array, base: int, col: SpanCollector) -> dict[str, Any]:
    """Typed argument columns for a list<KeyValue> per owner."""
    b = col.b
    kvs, owner = _flat(list_array)
    m = len(kvs)
    out: dict[str, Any] = {"owner": owner + base}
    if m == 0:
        out.update(key=np.zeros(0, np.int32), kind=np.zeros(0, np.int8), int=np.zeros(0, np.int64), dbl=np.zeros(0), str=np.zeros(0, np.int32))
        return out
    keys = _filled(kvs.field("key"), "")
    out["key"] = _codes(keys, b.arg_keys)
    v = kvs.field("value")
    valid = lambda f: pc.is_valid(v.field(f)).to_numpy(zero_copy_only=False) & pc.is_valid(v).to_numpy(zero_copy_only=False)  # noqa: E731
    is_s, is_i, is_d, is_b = valid("stringValue"), valid("intValue"), valid("doubleValue"), valid("boolValue")
    is_other = valid("arrayValue") | valid("kvlistValue") | valid("bytesValue")
    kind = np.full(m, ArgKind.JSON, np.int8)
    kind[is_other] = ArgKind.JSON
    kind[is_b] = ArgKind.BOOL
    kind[is_d] = ArgKind.DOUBLE
    kind[is_i] = ArgKind.INT
    kind[is_s] = ArgKind.STRING
    ints = np.zeros(m, np.int64)
    if is_i.any():
        ints[is_i] = _ints(v.field("intValue").take(pa.array(np.flatnonzero(is_i))))  # OverflowError/ArrowInvalid → fallback
    if is_b.any():
        ints[is_b] = v.field("boolValue").take(pa.array(np.flatnonzero(is_b))).to_numpy(zero_copy_only=False).astype(np.int64)
    dbl = np.zeros(m, np.float64)
    if is_d.any():
        dbl[is_d] = v.field("doubleValue").take(pa.array(np.flatnonzero(is_d))).to_numpy(zero_copy_only=False)
    strs = np.full(m, -1, np.int32)
    if is_s.any():
        strs[is_s] = _codes(v.field("stringValue").take(pa.array(np.flatnonzero(is_s))), b.arg_strings)
    json_rows = np.flatnonzero(kind == ArgKind.JSON)
    if len(json_rows):
        import json

        for r, value in zip(json_rows.tolist(), v.take(pa.array(json_rows)).to_pylist()):
            py = _py_value(value)
            if isinstance(py, str):  # bytesValue: base64 text
                kind[r] = ArgKind.STRING
                strs[r] = b.arg_strings.code(py)
            else:
                strs[r] = b.arg_strings.code(json.dumps(py, separators=(",", ":")))
    out.update(kind=kind, int=ints, dbl=dbl, str=strs)
    return out

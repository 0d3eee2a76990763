"""Fast path for OTLP/JSON Lines: typed msgspec decoding, then columns a batch at a time.

Each line is decoded into the `otel_json` structs (msgspec, C speed); a few MB of lines at a time
are turned into numpy columns by list comprehensions over the structs, field by field, instead
of span by span, and appended to the collector's columns. Anything unusual — a line that does
not decode, an id that is neither hex nor base64, a time that is not Unix ns, an intValue that
is not an int64 — makes `read_jsonl_columns` cut the collector's columns back to where they were
and return None: the caller then reads the file line by line with `JsonSpanWalker`, which
salvages and reports damage. Accepted spans become exactly what the walker would make of them.

Where the optional C accelerator `traceconv._otlp_json` is built, JSON Lines and the runs of a
JSON array skip the structs: it turns a batch straight into the same columns (and interns the
same strings in the same order); a batch it declines is decoded here, which decides. Its `scan`
of a batch runs in a thread, without the GIL, while the batch before it is added (`finish`).
``TRACECONV_NO_C=1`` turns it off.
"""

from __future__ import annotations

import gc
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator
from itertools import chain, repeat
from operator import is_not
from typing import Any, BinaryIO, Union

import msgspec
import numpy as np

from traceconv.model.trace import ArgKind, StringPool
from traceconv.readers.otel import MAX_TIME, SpanCollector, parse_hex_or_base64, put
from traceconv.readers.otel_json import (
    SPAN_KINDS,
    STATUS_CODES,
    AnyValue,
    KeyValue,
    Status,
    TracesData,
    _attrs,
    _decode_array,
    _decode_line,
    any_value,
    code_of,
)

try:
    from traceconv import _otlp_json
except ImportError:  # (built without a C compiler: the structs below do it all)
    _otlp_json = None
if os.environ.get("TRACECONV_NO_C"):
    _otlp_json = None

BATCH_BYTES = 1 << 22  # text decoded before it is turned into columns (bounds the structs alive)
_NULL = AnyValue()
_NO_STATUS = Status()
_decode_value = msgspec.json.Decoder(Union[AnyValue, None]).decode
_decode_kvs = msgspec.json.Decoder(list[KeyValue]).decode
# keys of the span fields written as args (`_field_args`), interned in this order
FIELD_KEYS = ("otel.trace_state", "otel.flags", "otel.dropped_attributes_count", "otel.dropped_events_count", "otel.dropped_links_count")
_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError, ValueError, OverflowError, TypeError)


class _Decline(Exception):
    """The fast path can't take this input; the line-by-line reader will."""


def read_jsonl_columns(lines: Iterable[bytes | memoryview], col: SpanCollector) -> int | None:
    """Read OTLP/JSON lines (bytes-like) into `col`; None (its columns as they were) if the fast
    path can't."""
    if _otlp_json is not None:
        return _read(((line, len(line)) for line in lines if not _blank(line)), col, BATCH_BYTES, "lines")

    def documents() -> Iterator[tuple[TracesData, int]]:
        for line in lines:
            if _blank(line):
                continue
            doc = _decode_line(line)
            if doc.resourceSpans is None and doc.batches is None:
                raise _Decline  # (the line-by-line reader says what it is)
            yield doc, len(line)

    return _read(documents(), col, BATCH_BYTES, "docs")


def line_views(first: bytes, stream: BinaryIO, block: int = 1 << 22) -> Iterator[bytes | memoryview]:
    """`first`, then the lines of the rest of `stream`, as views into blocks read whole: no copy
    per line (only a line that runs past a block is joined from its parts)."""
    yield first
    parts: list[bytes] = []  # (an unfinished line)
    while True:
        chunk = stream.read(block)
        if not chunk:
            if parts:
                yield b"".join(parts)
            return
        pos = 0
        if parts:
            nl = chunk.find(b"\n")
            if nl < 0:
                parts.append(chunk)
                continue
            parts.append(chunk[: nl + 1])
            yield b"".join(parts)
            parts, pos = [], nl + 1
        view = memoryview(chunk)
        while (nl := chunk.find(b"\n", pos)) >= 0:
            yield view[pos : nl + 1]
            pos = nl + 1
        if pos < len(chunk):
            parts.append(chunk[pos:])


_BLANKS = frozenset(b" \t\n\r\x0b\x0c")


def _blank(line: bytes | memoryview) -> bool:
    """`line.isspace()`, for views too."""
    return len(line) > 0 and line[0] in _BLANKS and bytes(line).isspace()


def read_array_columns(stream: BinaryIO, col: SpanCollector) -> int | None:
    """Read a JSON array of OTLP/JSON documents into `col` as a stream: the array is cut into
    runs of whole documents (`json_events.iter_event_chunks`, a block at a time), so the
    document is never decoded whole. None (its columns as they were) if the fast path can't:
    anything but a clean array of documents."""
    from traceconv.readers.json_events import ScanResult, iter_event_chunks

    def runs() -> Iterator[tuple[tuple[bytes, Any], int]]:
        scan = ScanResult()
        decode = _count_or_none if _otlp_json is not None else _array_or_none  # (proves the scanner's cuts)
        for chunk, docs in iter_event_chunks(stream, scan, decode=decode):
            yield (chunk, docs if _otlp_json is None else None), len(chunk)
        if scan.truncated or scan.stray or not scan.bare_array or b"".join(scan.header.split()) != b"[]":
            raise _Decline  # (damaged, or not a bare array: the whole-document reader says what)

    return _read(runs(), col, BATCH_BYTES, "arrays")


def _count_or_none(chunk: bytes) -> range | None:
    """The C reader's check that `chunk` is a JSON array of objects (their number, as a range)."""
    n = _otlp_json.count_objects(chunk)
    return None if n is None else range(n)


def _array_or_none(chunk: bytes) -> list[TracesData] | None:
    try:
        return _decode_array(chunk)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return None


def _read(items: Iterator[tuple[Any, int]], col: SpanCollector, batch: int, form: str) -> int | None:
    """Append items a batch at a time (each weighs its bytes, `batch` in all): decoded documents
    (`form` "docs"), JSON lines ("lines") or runs of a JSON array ("arrays": (text, its documents
    or None))."""
    appender = _Appender(col)
    pipelined = form != "docs" and _otlp_json is not None
    if pipelined:

        def add(batch: list | None) -> None:
            appender.add_later(batch, form)

    else:
        add = {"docs": appender.add, "lines": appender.add_lines, "arrays": appender.add_arrays}[form]
    docs: list = []
    size = 0
    collect = gc.isenabled()
    gc.disable()  # (millions of new containers, none in a cycle: collections would only cost time)
    try:
        for item, weight in items:
            docs.append(item)
            size += weight
            if size >= batch:
                add(docs)
                docs, size = [], 0
        if docs:
            add(docs)
        if pipelined:
            add(None)  # (the batch still being scanned)
    except (*_ERRORS, _Decline):
        appender.rollback()
        return None
    finally:
        appender.wait()
        if collect:
            gc.enable()
    return appender.n


# ---- columns from structs -----------------------------------------------------------------


def _intern(values: list, pool: StringPool) -> np.ndarray:
    return np.array(pool.codes_of(values), np.int32)


_PLAIN_INTS = re.compile(r"-?[0-9]+(?:,-?[0-9]+)*", re.ASCII)


def _ints(values: list) -> np.ndarray:
    """int64 of ints or decimal strings (OTLP/JSON writes int64 as either): a malformed or
    out-of-range one declines. Plain decimal text is parsed by numpy in one call; anything else
    (" 5", "+5", "1_000": what `int` takes, as the line-by-line reader does) by `int`, as numpy
    would read "-" or "- 5" as numbers where `int` refuses them."""
    try:
        text = ",".join(values)  # (TypeError: not all strings)
        if text.count(",") == len(values) - 1 and _PLAIN_INTS.fullmatch(text):  # (no value holds the separator)
            out = np.fromstring(text, dtype=np.int64, sep=",")  # (ValueError at anything else)
            if len(out) == len(values) and not (out == np.iinfo(np.int64).max).any():  # (strtoll saturates)
                return out
    except (TypeError, ValueError, DeprecationWarning):
        pass
    return np.array([int(v) for v in values], np.int64)  # ValueError / OverflowError → decline


def _times(values: list) -> np.ndarray:
    """Unix-ns times; declines on anything the walker would skip (not in 0..2^63-1)."""
    t = _ints(values)
    if len(t) and (t.min() < 0 or t.max() > MAX_TIME):
        raise _Decline
    return t


def _ids(values: list[str], nbytes: int) -> np.ndarray:
    """Ids as a (n, nbytes // 8) uint64 matrix; "" → 0. Hex of the exact width is decoded in one
    call; others (base64, 0x…) one by one; an undecodable id declines."""
    n = len(values)
    width = 2 * nbytes
    lengths = set(map(len, values))
    if lengths <= {width, 0}:
        text = "".join(values) if 0 not in lengths else "".join([v or "0" * width for v in values])
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
        if len(raw) == n * nbytes:  # (every value `width` long: none held spaces)
            return np.frombuffer(raw, ">u8").astype(np.uint64).reshape(n, nbytes // 8)
    out = np.zeros((n, nbytes // 8), np.uint64)
    for i, v in enumerate(values):
        x = parse_hex_or_base64(v, nbytes)
        if x is None:
            raise _Decline
        out[i, -1] = x & 0xFFFFFFFFFFFFFFFF
        if nbytes == 16:
            out[i, 0] = x >> 64
    return out


def _owners(lists: list[list], base: int) -> tuple[list, np.ndarray]:
    """Flattened items of per-owner lists and each item's owner (`base` + list index)."""
    lengths = np.fromiter(map(len, lists), np.int64, len(lists))
    return list(chain.from_iterable(lists)), np.repeat(np.arange(base, base + len(lists), dtype=np.int64), lengths)


def _present(values: list) -> np.ndarray:
    return np.fromiter(map(is_not, values, repeat(None)), bool, len(values))


def _attr_columns(kvs: list, owner: np.ndarray, b) -> dict[str, np.ndarray]:
    """Typed argument columns for key/values (strings interned: keys, then string values, then
    JSON values, each in order)."""
    m = len(kvs)
    out: dict[str, Any] = {"owner": owner, "key": _intern([kv.key for kv in kvs], b.arg_keys)}
    values = [kv.value for kv in kvs]
    if None in values:
        values = [_NULL if v is None else v for v in values]
    sv = [v.stringValue for v in values]
    iv = [v.intValue for v in values]
    is_s = _present(sv)
    is_i = _present(iv) & ~is_s
    kind = np.where(is_s, np.int8(ArgKind.STRING), np.where(is_i, np.int8(ArgKind.INT), np.int8(ArgKind.JSON))).astype(np.int8)
    ints = np.zeros(m, np.int64)
    if is_i.any():
        ints[is_i] = _ints([iv[r] for r in np.flatnonzero(is_i).tolist()] if not is_i.all() else iv)
    strs = np.full(m, -1, np.int32)
    if is_s.any():
        strs[is_s] = _intern([sv[r] for r in np.flatnonzero(is_s).tolist()] if not is_s.all() else sv, b.arg_strings)
    dbl = np.zeros(m, np.float64)
    rest = np.flatnonzero(~(is_s | is_i))
    if len(rest):
        dv = [values[r].doubleValue for r in rest.tolist()]
        is_d = _present(dv)
        if is_d.any():
            doubles = [x for x in dv if x is not None]
            if not set(map(type, doubles)) <= {float}:  # ("NaN" and such, as text)
                raise _Decline
            kind[rest[is_d]] = ArgKind.DOUBLE
            dbl[rest[is_d]] = doubles
            rest = rest[~is_d]
    for r in rest.tolist():
        v = values[r]
        if v.boolValue is not None:
            kind[r] = ArgKind.BOOL
            ints[r] = int(v.boolValue)
        else:
            py = any_value(v)
            if isinstance(py, str):  # bytesValue: its base64 text
                kind[r] = ArgKind.STRING
                strs[r] = b.arg_strings.code(py)
            else:
                strs[r] = b.arg_strings.code(json.dumps(py, separators=(",", ":")))
    out.update(kind=kind, int=ints, dbl=dbl, str=strs)
    return out


def _field_args(values: list, key: str, base: int, b) -> dict[str, np.ndarray]:
    """Args from a per-span scalar field where it is set (non-empty / non-zero)."""
    n = len(values)
    if values and isinstance(values[0], str):
        rows = np.flatnonzero(np.fromiter(map(bool, values), bool, n))
        strs = _intern([values[i] for i in rows.tolist()], b.arg_strings)
        ints = np.zeros(len(rows), np.int64)
        kind = ArgKind.STRING
    else:
        all_ints = np.fromiter(values, np.int64, n)  # (OverflowError beyond int64: decline)
        rows = np.flatnonzero(all_ints)
        ints = all_ints[rows]
        strs = np.full(len(rows), -1, np.int32)
        kind = ArgKind.INT
    return _args(rows + base, b.arg_keys.code(key), kind, ints, strs)


def _codes(values: list, names: dict[str, int]) -> np.ndarray:
    """Span kinds or status codes as the walker reads them (`otel_json.code_of`)."""
    if set(map(type, values)) <= {int}:  # (numpy would also take "5" for 5; the walker doesn't)
        try:
            codes = np.fromiter(values, np.int64, len(values))
            if not len(codes) or (codes.min() >= 0 and codes.max() < 128):
                return codes.astype(np.int8)
        except OverflowError:
            pass
    return np.array([code_of(v, names) for v in values], np.int8)


class _Appender:
    """Batches turned into columns and appended to the collector's, which `rollback` cuts back
    to where they were (string pools and resources keep what was added)."""

    def __init__(self, col: SpanCollector) -> None:
        self.col = col
        self.n = 0
        self.n_events = 0
        self.n_links = 0
        self.columns = _columns(col)
        self.lengths = [len(a) for a in self.columns]
        self.row0, self.ev0, self.link0 = len(col.b.ts), len(col.ev_ts), len(col.l_row)
        self.resources: dict[bytes, int] = {}
        self.pending: tuple | None = None  # (batch, its _Scan, form) for `add_later`
        self.raw_resources: dict[bytes, bytes] = {}  # (the C reader's: key by their text as written)
        self.resource_attrs: dict[bytes, list] = {}  # (and their attributes by key)
        self.values: dict[bytes, tuple] = {}  # (the C reader's attribute values it hands back, by their text)

    def rollback(self) -> None:
        for a, n in zip(self.columns, self.lengths):
            del a[n:]
        col = self.col
        for d, first in ((col.status_message, self.row0), (col.l_attrs, self.link0)):
            for k in [k for k in d if k >= first]:
                del d[k]

    def add_lines(self, lines: list[bytes | memoryview], scanned: _Scan | None = None) -> None:
        """A batch of JSON lines through the C reader; decoded here if it declines."""
        if not self._add_native(lines, False, scanned):
            self.add(_checked([_decode_line(line) for line in lines]))

    def add_arrays(self, runs: list[tuple[bytes, Any]], scanned: _Scan | None = None) -> None:
        """A batch of runs of a JSON array ((text, its documents or None)), through the C reader
        where built; decoded here otherwise, or if it declines."""
        if _otlp_json is None or not self._add_native([text for text, _ in runs], True, scanned):
            self.add(_checked([doc for text, docs in runs for doc in (_decode_array(text) if docs is None else docs)]))

    def add_later(self, batch: list | None, form: str) -> None:
        """Start scanning `batch` in a thread (the C scan runs without the GIL), then add the batch
        scanned before it: reading a batch overlaps the Python work on the one before. None: add
        the last one."""
        scanned = None
        if batch is not None:
            texts = batch if form == "lines" else [text for text, _ in batch]
            scanned = _Scan(texts, form == "arrays")
        pending, self.pending = self.pending, (batch, scanned, form) if batch is not None else None
        if pending is not None:
            before, scan, before_form = pending
            (self.add_lines if before_form == "lines" else self.add_arrays)(before, scan)

    def wait(self) -> None:
        """Let a scan still running end (its result is not needed)."""
        if self.pending is not None:
            self.pending[1].join()
            self.pending = None

    def _add_native(self, texts: list, arrays: bool, scanned: _Scan | None = None) -> bool:
        """Append what the C reader makes of `texts`; False (nothing appended) if it declines."""
        try:
            p = self._native(texts, arrays, scanned)
        except (*_ERRORS, _Decline):
            p = None
        if p is None:
            return False
        self._append(p)
        self.n += p["m"]
        self.n_events += len(p["ev_ts"])
        self.n_links += len(p["l_row"])
        return True

    def _native(self, texts: list, arrays: bool, scanned: _Scan | None = None) -> dict[str, Any] | None:
        """The columns `add` makes, from `_otlp_json.scan` and `finish` (None: it declined)."""
        b = self.col.b
        scan = (scanned or _Scan(texts, arrays)).result()
        if scan is None:
            return None
        pools = ((b.names.codes, b.names.values), (b.arg_keys.codes, b.arg_keys.values), (b.arg_strings.codes, b.arg_strings.values))
        r = _otlp_json.finish(scan, pools, FIELD_KEYS, self._value_of, self._resource_key, _kvs_of, self._add_resources)
        if r is None:
            return None
        base = self.n

        def col(name: str, dtype) -> np.ndarray:
            return np.frombuffer(r[name], dtype)

        start = col("start", np.int64)
        p: dict[str, Any] = {"m": len(start), "start": start, "end": col("end", np.int64)}
        for k in ("trace_hi", "trace_lo", "span_id", "parent_span_id", "l_hi", "l_lo", "l_sid"):
            p[k] = col(k, np.uint64)
        p["kind"], p["status"] = col("kind", np.int8), col("status", np.int8)
        p["status_message"] = {base + row: msg for row, msg in r["status_message"].items()}
        counts = col("group_count", np.int64)
        p["resource"] = np.repeat(col("group_resource", np.int64).astype(np.int32), counts)
        p["cat"] = np.repeat(np.array([b.categories.code(c) for c in r["group_category"]], np.int32), counts)
        p["name"] = col("name", np.int32)
        p["args"] = _native_args(r["args"], base)
        state = col("trace_state", np.int32)
        rows = np.flatnonzero(state >= 0)
        p["extra_args"] = [_args(rows + base, b.arg_keys.code(FIELD_KEYS[0]), ArgKind.STRING, np.zeros(len(rows), np.int64), state[rows])]
        for key, name in zip(FIELD_KEYS[1:], ("flags", "dropped_attributes", "dropped_events", "dropped_links")):
            values = col(name, np.int64)
            rows = np.flatnonzero(values)
            p["extra_args"].append(_args(rows + base, b.arg_keys.code(key), ArgKind.INT, values[rows], np.full(len(rows), -1, np.int32)))
        p["ev_span"] = col("ev_span", np.int64) + base
        p["ev_ts"] = col("ev_ts", np.int64)
        p["ev_name"] = col("ev_name", np.int32)
        p["ev_args"] = _native_args(r["ev_args"], self.n_events)
        p["l_row"] = col("l_row", np.int64) + base
        p["l_attrs"] = {self.n_links + k: v for k, v in r["l_attrs"].items()}
        return p

    def _value_of(self, raw: bytes) -> tuple[int, int, int, float, str | None]:
        """`_value_of`, each distinct raw text once (the same arrays, lists and maps recur)."""
        v = self.values.get(raw)
        if v is None:
            if len(self.values) >= 4096:  # (distinct ones need not pile up)
                self.values.clear()
            v = self.values[raw] = _value_of(raw)
        return v

    def _resource_key(self, raw: bytes) -> bytes:
        """A resource's attributes (raw JSON) checked, as the key `add` files them under; nothing
        is added until the C reader has read the whole batch (`_add_resources`)."""
        key = self.raw_resources.get(raw)
        if key is None:
            attrs = _decode_kvs(raw)
            key = self.raw_resources[raw] = msgspec.json.encode(attrs)
            self.resource_attrs[key] = attrs
        return key

    def _add_resources(self, keys: list[bytes]) -> list[int]:
        """The batch's resources (`_resource_key`s, in order) added as `add` adds them: their
        indices in the collector."""
        return [self._resource(key, self.resource_attrs[key]) for key in keys]

    def _resource(self, key: bytes, attrs: list) -> int:
        """The collector's index of the resource with these attributes (`key`: their JSON), added
        at first sight."""
        res = self.resources.get(key)
        if res is None:
            res = self.resources[key] = self.col.add_resource(_attrs(attrs))
        return res

    def add(self, docs: list[TracesData]) -> None:
        col = self.col
        b = col.b
        spans: list = []
        groups: list[tuple[int, int, int]] = []  # (resource, category, spans) per scope
        for doc in docs:
            for rs in doc.resourceSpans or doc.batches or ():
                attrs = rs.resource.attributes if rs.resource else []
                res = self._resource(msgspec.json.encode(attrs), attrs)  # (a line's resource is mostly the one before)
                for ss in rs.scopeSpans or rs.instrumentationLibrarySpans:
                    scope = ss.scope or ss.instrumentationLibrary
                    groups.append((res, b.categories.code(scope.name if scope and scope.name else "otel"), len(ss.spans)))
                    spans += ss.spans
        m = len(spans)
        base = self.n
        counts = [g[2] for g in groups]
        p: dict[str, Any] = {"m": m}
        # validate before anything is interned
        p["start"] = _times([sp.startTimeUnixNano for sp in spans])
        p["end"] = _times([sp.endTimeUnixNano for sp in spans])
        trace = _ids([sp.traceId for sp in spans], 16)
        p["trace_hi"], p["trace_lo"] = np.ascontiguousarray(trace[:, 0]), np.ascontiguousarray(trace[:, 1])
        p["span_id"] = _ids([sp.spanId for sp in spans], 8)[:, 0]
        p["parent_span_id"] = _ids([sp.parentSpanId for sp in spans], 8)[:, 0]
        events, ev_owner = _owners([sp.events for sp in spans], base)
        links, l_owner = _owners([sp.links for sp in spans], base)
        ev_ts = _times([e.timeUnixNano for e in events])
        l_trace = _ids([ln.traceId for ln in links], 16)
        l_sid = _ids([ln.spanId for ln in links], 8)

        p["kind"] = _codes([sp.kind for sp in spans], SPAN_KINDS)
        statuses = [sp.status for sp in spans]
        if None in statuses:
            statuses = [_NO_STATUS if st is None else st for st in statuses]
        p["status"] = _codes([st.code for st in statuses], STATUS_CODES)
        messages = [st.message for st in statuses]
        p["status_message"] = {base + i: msg for i, msg in enumerate(messages) if msg} if any(messages) else {}
        p["resource"] = np.repeat(np.array([g[0] for g in groups], np.int32), counts)
        p["cat"] = np.repeat(np.array([g[1] for g in groups], np.int32), counts)
        p["name"] = _intern([sp.name for sp in spans], b.names)
        kvs, owner = _owners([sp.attributes for sp in spans], base)
        p["args"] = _attr_columns(kvs, owner, b)
        p["extra_args"] = [
            _field_args([sp.traceState for sp in spans], "otel.trace_state", base, b),
            _field_args([sp.flags for sp in spans], "otel.flags", base, b),
            _field_args([sp.droppedAttributesCount for sp in spans], "otel.dropped_attributes_count", base, b),
            _field_args([sp.droppedEventsCount for sp in spans], "otel.dropped_events_count", base, b),
            _field_args([sp.droppedLinksCount for sp in spans], "otel.dropped_links_count", base, b),
        ]
        p["ev_span"] = ev_owner
        p["ev_ts"] = ev_ts
        p["ev_name"] = _intern([e.name for e in events], b.names)
        kvs, owner = _owners([e.attributes for e in events], self.n_events)
        p["ev_args"] = _attr_columns(kvs, owner, b)
        p["l_row"] = l_owner
        p["l_hi"], p["l_lo"] = np.ascontiguousarray(l_trace[:, 0]), np.ascontiguousarray(l_trace[:, 1])
        p["l_sid"] = np.ascontiguousarray(l_sid[:, 0])
        p["l_attrs"] = {self.n_links + k: _attrs(ln.attributes) for k, ln in enumerate(links) if ln.attributes}
        self._append(p)
        self.n += m
        self.n_events += len(events)
        self.n_links += len(links)

    def _append(self, p: dict[str, Any]) -> None:
        col = self.col
        b = col.b
        row0, ev0, link0 = self.row0, self.ev0, self.link0  # (p's rows count from this reader's first)
        put(col.trace_hi, p["trace_hi"])
        put(col.trace_lo, p["trace_lo"])
        put(col.span_id, p["span_id"])
        put(col.parent_span_id, p["parent_span_id"])
        put(col.kind, p["kind"])
        put(col.status, p["status"])
        col.status_message.update({row0 + r: v for r, v in p["status_message"].items()})
        put(b.ts, p["start"])
        put(col.end, p["end"])
        put(b.name, p["name"], np.int32)
        put(b.cat, p["cat"], np.int32)
        put(b.correlation, np.full(p["m"], -1, np.int64))
        put(col.resource, p["resource"], np.int32)
        for args in [p["args"]] + p["extra_args"]:
            _append_args(b.a_owner, b.a_key, b.a_kind, b.a_int, b.a_dbl, b.a_str, args, row0)
        put(col.ev_span, p["ev_span"] + row0)
        put(col.ev_ts, p["ev_ts"])
        put(col.ev_name, p["ev_name"], np.int32)
        e = col.ev_args
        _append_args(e.owner, e.key, e.kind, e.int, e.dbl, e.str, p["ev_args"], ev0)
        put(col.l_row, p["l_row"] + row0)
        put(col.l_hi, p["l_hi"])
        put(col.l_lo, p["l_lo"])
        put(col.l_sid, p["l_sid"])
        col.l_attrs.update({link0 + k: v for k, v in p["l_attrs"].items()})


class _Scan:
    """`_otlp_json.scan(texts, arrays)` in a thread of its own (it runs without the GIL)."""

    def __init__(self, texts: list, arrays: bool) -> None:
        self.out: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(texts, arrays), daemon=True)
        self.thread.start()

    def _run(self, texts: list, arrays: bool) -> None:
        try:
            self.out = _otlp_json.scan(texts, arrays)
        except BaseException as e:  # noqa: BLE001 (raised again in `result`, in the reading thread)
            self.error = e

    def join(self) -> None:
        self.thread.join()

    def result(self) -> Any:
        """The scan (a capsule for `finish`), or None: declined."""
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.out


def _checked(docs: list[TracesData]) -> list[TracesData]:
    if any(doc.resourceSpans is None and doc.batches is None for doc in docs):
        raise _Decline  # (the line-by-line reader says what it is)
    return docs


def _value_of(raw: bytes) -> tuple[int, int, int, float, str | None]:
    """For the C reader: an attribute value it does not read itself (raw JSON) as `_attr_columns`
    makes it: (0: interned with the string values, 1: after them; kind, int, double, text)."""
    v = _decode_value(raw)
    if v is None:
        v = _NULL
    if v.stringValue is not None:
        return 0, ArgKind.STRING, 0, 0.0, v.stringValue
    if v.intValue is not None:
        return -1, ArgKind.INT, int(_ints([v.intValue])[0]), 0.0, None
    if v.doubleValue is not None:
        if type(v.doubleValue) is not float:
            raise _Decline
        return -1, ArgKind.DOUBLE, 0, v.doubleValue, None
    if v.boolValue is not None:
        return -1, ArgKind.BOOL, int(v.boolValue), 0.0, None
    py = any_value(v)
    if isinstance(py, str):  # bytesValue: its base64 text
        return 1, ArgKind.STRING, 0, 0.0, py
    return 1, ArgKind.JSON, 0, 0.0, json.dumps(py, separators=(",", ":"))


def _kvs_of(raw: bytes) -> list:
    """For the C reader: a scope's or link's attributes (raw JSON), as `_attrs` makes them."""
    return _attrs(_decode_kvs(raw))


def _native_args(a: dict[str, bytes], base: int) -> dict[str, np.ndarray]:
    return {"owner": np.frombuffer(a["owner"], np.int64) + base, "key": np.frombuffer(a["key"], np.int32),
            "kind": np.frombuffer(a["kind"], np.int8), "int": np.frombuffer(a["int"], np.int64),
            "dbl": np.frombuffer(a["dbl"], np.float64), "str": np.frombuffer(a["str"], np.int32)}


def _args(owner: np.ndarray, key: int, kind: int, ints: np.ndarray, strs: np.ndarray) -> dict[str, np.ndarray]:
    n = len(owner)
    return {"owner": owner, "key": np.full(n, key, np.int32), "kind": np.full(n, kind, np.int8), "int": ints,
            "dbl": np.zeros(n, np.float64), "str": strs}


def _columns(col: SpanCollector) -> list:
    """Every array column `_Appender` appends to."""
    b, e = col.b, col.ev_args
    return [col.trace_hi, col.trace_lo, col.span_id, col.parent_span_id, col.kind, col.status, b.ts, col.end, b.name, b.cat,
            b.correlation, col.resource, b.a_owner, b.a_key, b.a_kind, b.a_int, b.a_dbl, b.a_str, col.ev_span, col.ev_ts,
            col.ev_name, e.owner, e.key, e.kind, e.int, e.dbl, e.str, col.l_row, col.l_hi, col.l_lo, col.l_sid]


def _append_args(owner, key, kind, int_, dbl, str_, a: dict[str, np.ndarray], shift: int) -> None:
    if not len(a["owner"]):
        return
    put(owner, a["owner"] + shift, np.int64)
    put(key, a["key"], np.int32)
    put(kind, a["kind"], np.int8)
    put(int_, a["int"], np.int64)
    put(dbl, a["dbl"], np.float64)
    put(str_, a["str"], np.int32)

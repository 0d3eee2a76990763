"""OTLP/JSON span dumps: Collector ``file`` exporter JSONL, JSON arrays, Tempo ``batches``,
legacy ``instrumentationLibrarySpans``, Python SDK ``ConsoleSpanExporter`` output.

Decoded with typed msgspec structs (no intermediate dicts), one line at a time. Ids are hex
(or base64 from Tempo / old Jaeger, told apart by length) — never through protobuf's
json_format, which silently turns hex ids into garbage bytes. int64 fields arrive as strings
or numbers.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterator, Union

import msgspec

from traceconv.errors import MalformedTraceError, UnsupportedFormatError
from traceconv.model.trace import ArgKind
from traceconv.readers.otel import SpanCollector, parse_hex_or_base64

Num = Union[int, str]


class ArrayValue(msgspec.Struct):
    values: list["AnyValue"] = []


class KeyValueList(msgspec.Struct):
    values: list["KeyValue"] = []


class AnyValue(msgspec.Struct):
    stringValue: Union[str, None] = None
    intValue: Union[Num, None] = None
    doubleValue: Union[float, str, None] = None
    boolValue: Union[bool, None] = None
    arrayValue: Union[ArrayValue, None] = None
    kvlistValue: Union[KeyValueList, None] = None
    bytesValue: Union[str, None] = None


class KeyValue(msgspec.Struct):
    key: str = ""
    value: Union[AnyValue, None] = None


class Status(msgspec.Struct):
    code: Union[int, str] = 0
    message: str = ""


class Event(msgspec.Struct):
    timeUnixNano: Num = 0
    name: str = ""
    attributes: list[KeyValue] = []
    droppedAttributesCount: int = 0


class Link(msgspec.Struct):
    traceId: str = ""
    spanId: str = ""
    traceState: str = ""
    attributes: list[KeyValue] = []
    droppedAttributesCount: int = 0
    flags: int = 0


class Span(msgspec.Struct):
    traceId: str = ""
    spanId: str = ""
    parentSpanId: str = ""
    traceState: str = ""
    name: str = ""
    kind: Union[int, str] = 0
    startTimeUnixNano: Num = 0
    endTimeUnixNano: Num = 0
    attributes: list[KeyValue] = []
    droppedAttributesCount: int = 0
    events: list[Event] = []
    droppedEventsCount: int = 0
    links: list[Link] = []
    droppedLinksCount: int = 0
    status: Union[Status, None] = None
    flags: int = 0


class Scope(msgspec.Struct):
    name: str = ""
    version: str = ""
    attributes: list[KeyValue] = []


class ScopeSpans(msgspec.Struct):
    scope: Union[Scope, None] = None
    instrumentationLibrary: Union[Scope, None] = None
    spans: list[Span] = []
    schemaUrl: str = ""


class Resource(msgspec.Struct):
    attributes: list[KeyValue] = []
    droppedAttributesCount: int = 0


class ResourceSpans(msgspec.Struct):
    resource: Union[Resource, None] = None
    scopeSpans: list[ScopeSpans] = []
    instrumentationLibrarySpans: list[ScopeSpans] = []
    schemaUrl: str = ""


class TracesData(msgspec.Struct):
    resourceSpans: Union[list[ResourceSpans], None] = None
    batches: Union[list[ResourceSpans], None] = None


_decode_line = msgspec.json.Decoder(TracesData).decode
_decode_array = msgspec.json.Decoder(list[TracesData]).decode

SPAN_KINDS = {"SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2, "SPAN_KIND_CLIENT": 3,
              "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5}
STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2, "UNSET": 0, "OK": 1, "ERROR": 2}


def any_value(v: AnyValue | None) -> Any:
    if v is None:
        return None
    if v.stringValue is not None:
        return v.stringValue
    if v.intValue is not None:
        return int(v.intValue)
    if v.doubleValue is not None:
        return float(v.doubleValue)
    if v.boolValue is not None:
        return v.boolValue
    if v.arrayValue is not None:
        return [any_value(x) for x in v.arrayValue.values]
    if v.kvlistValue is not None:
        return {kv.key: any_value(kv.value) for kv in v.kvlistValue.values}
    if v.bytesValue is not None:
        return v.bytesValue
    return None


def _attrs(kvs: list[KeyValue]) -> list[tuple[str, Any]]:
    return [(kv.key, any_value(kv.value)) for kv in kvs]


class JsonSpanWalker:
    """Appends the spans of decoded `TracesData` documents to a `SpanCollector`."""

    def __init__(self, col: SpanCollector, source: str) -> None:
        self.col = col
        self.source = source
        b = col.b
        self.bad_ids = 0
        self._scopes: dict[tuple[str, str], int] = {}
        # bound appenders (hot path)
        self._a = (b.a_owner.append, b.a_key.append, b.a_kind.append, b.a_int.append, b.a_dbl.append, b.a_str.append)
        self._key = b.arg_keys.code
        self._str = b.arg_strings.code

    def walk(self, doc: TracesData) -> int:
        col = self.col
        b = col.b
        n0 = col.num_spans
        for rs in doc.resourceSpans or doc.batches or ():
            res_attrs = _attrs(rs.resource.attributes) if rs.resource else []
            res = col.add_resource(res_attrs)
            for ss in rs.scopeSpans or rs.instrumentationLibrarySpans:
                scope = ss.scope or ss.instrumentationLibrary
                cat = scope.name if scope and scope.name else "otel"
                cat_code = b.categories.code(cat)
                for sp in ss.spans:
                    self._span(sp, res, cat_code)
        return col.num_spans - n0

    def _span(self, sp: Span, res: int, cat_code: int) -> None:
        col = self.col
        b = col.b
        row = len(b.ts)
        tid = parse_hex_or_base64(sp.traceId, 16)
        sid = parse_hex_or_base64(sp.spanId, 8)
        psid = parse_hex_or_base64(sp.parentSpanId, 8)
        if tid is None or sid is None or psid is None:
            self.bad_ids += 1
            tid, sid, psid = tid or 0, sid or 0, psid or 0
        col.trace_hi.append(tid >> 64)
        col.trace_lo.append(tid & 0xFFFFFFFFFFFFFFFF)
        col.span_id.append(sid)
        col.parent_span_id.append(psid)
        kind = sp.kind
        col.kind.append(kind if isinstance(kind, int) and 0 <= kind < 128 else SPAN_KINDS.get(str(kind), 0))
        st = sp.status
        code = 0
        if st is not None:
            code = st.code if isinstance(st.code, int) else STATUS_CODES.get(st.code, 0)
            if st.message:
                col.status_message[row] = st.message
        col.status.append(code if 0 <= code < 128 else 0)
        start = int(sp.startTimeUnixNano)
        b.ts.append(start)
        col.end.append(int(sp.endTimeUnixNano))
        b.name.append(b.names.code(sp.name))
        b.cat.append(cat_code)
        b.correlation.append(-1)
        col.resource.append(res)
        a_owner, a_key, a_kind, a_int, a_dbl, a_str = self._a
        key_code, str_code = self._key, self._str
        for kv in sp.attributes:
            key = kv.key
            v = kv.value
            a_owner(row)
            a_key(key_code(key))
            if v is not None and v.stringValue is not None:
                a_kind(0)
                a_int(0)
                a_dbl(0.0)
                a_str(str_code(v.stringValue))
                continue
            if v is not None and v.intValue is not None:
                iv = int(v.intValue)
                if -(1 << 63) <= iv < (1 << 63):
                    a_kind(1)
                    a_int(iv)
                    a_dbl(0.0)
                    a_str(-1)
                else:
                    a_kind(0)
                    a_int(0)
                    a_dbl(0.0)
                    a_str(str_code(str(iv)))
                continue
            value = any_value(v)
            if isinstance(value, bool):
                a_kind(ArgKind.BOOL)
                a_int(int(value))
                a_dbl(0.0)
                a_str(-1)
            elif isinstance(value, float):
                a_kind(ArgKind.DOUBLE)
                a_int(0)
                a_dbl(value)
                a_str(-1)
            else:
                a_kind(ArgKind.JSON)
                a_int(0)
                a_dbl(0.0)
                a_str(str_code(json.dumps(value, separators=(",", ":"))))
        if sp.events:
            for ev in sp.events:
                col.add_event(row, int(ev.timeUnixNano), ev.name, _attrs(ev.attributes))
        for link in sp.links:
            ltid = parse_hex_or_base64(link.traceId, 16) or 0
            lsid = parse_hex_or_base64(link.spanId, 8) or 0
            col.add_link(row, ltid, lsid, _attrs(link.attributes))
        if sp.traceState:
            b.add_arg(row, "otel.trace_state", sp.traceState)
        if sp.flags:
            b.add_arg(row, "otel.flags", sp.flags)
        for what, count in (("attributes", sp.droppedAttributesCount), ("events", sp.droppedEventsCount), ("links", sp.droppedLinksCount)):
            if count:
                b.add_arg(row, f"otel.dropped_{what}_count", count)


# ---- document iteration per container form ------------------------------------------------


def iter_jsonl(stream, source: str, diag) -> Iterator[tuple[int, TracesData]]:
    """(line number, document) per non-empty line.

    A bad line in the middle is skipped with a warning; a bad last line is taken for a
    truncated write. A bad first line means this is not an OTLP/JSON dump.
    """
    lineno = 0
    good = 0
    pending: tuple[int, str] | None = None
    for raw in stream:
        lineno += 1
        line = raw.strip()
        if not line:
            continue
        if pending is not None:
            diag.stats["otlp_json_bad_line"] += 1
            diag.warnings.append(f"{source}:{pending[0]}: skipped a damaged line ({pending[1]})")
            pending = None
        try:
            doc = _decode_line(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            if good == 0:
                raise _not_otlp(line, source, lineno, e) from None
            pending = (lineno, _short(e))
            continue
        if doc.resourceSpans is None and doc.batches is None:
            if good == 0:
                raise UnsupportedFormatError("JSON but not OTLP spans (no resourceSpans)", source=source, where=f"line {lineno}")
            pending = (lineno, "no resourceSpans")
            continue
        good += 1
        yield lineno, doc
    if pending is not None:
        diag.stats["otlp_json_truncated_last_line"] += 1
        diag.warnings.append(
            f"{source}:{pending[0]}: last line is incomplete ({pending[1]}); skipped it and kept the {good} complete lines before it"
        )


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:160]


def _not_otlp(line: bytes, source: str, lineno: int, e: Exception) -> Exception:
    try:
        obj = json.loads(line)
    except ValueError:
        return MalformedTraceError(f"invalid JSON ({_short(e)})", source=source, where=f"line {lineno}")
    if isinstance(obj, dict) and "traceEvents" in obj:
        return UnsupportedFormatError("this is a PyTorch/Chrome trace, not OTel spans: use `traceconv torch2perfetto`", source=source)
    return UnsupportedFormatError(f"JSON but not OTLP spans ({_short(e)})", source=source, where=f"line {lineno}")


def iter_array(data: bytes, source: str) -> Iterator[TracesData]:
    try:
        docs = _decode_array(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise MalformedTraceError(f"not a JSON array of OTLP documents ({_short(e)})", source=source) from None
    yield from docs


def iter_concatenated(text: str, source: str, diag) -> Iterator[dict]:
    """Objects written back to back (pretty-printed JSON, ConsoleSpanExporter)."""
    dec = json.JSONDecoder()
    pos = 0
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
        if pos >= n:
            return
        try:
            obj, pos = dec.raw_decode(text, pos)
        except ValueError as e:
            line = text.count("\n", 0, pos) + 1
            if pos == 0:
                raise MalformedTraceError(f"invalid JSON ({e.msg})", source=source, where=f"line {line}") from None
            diag.stats["json_truncated_tail"] += 1
            diag.warnings.append(f"{source}:{line}: unreadable JSON from here on ({e.msg}); skipped the rest")
            return
        yield obj


def console_span(obj: dict, col: SpanCollector, source: str) -> None:
    """A `span.to_json()` object from the Python SDK's ConsoleSpanExporter."""
    b = col.b
    row = len(b.ts)
    ctx = obj.get("context") or {}
    tid = parse_hex_or_base64(str(ctx.get("trace_id") or ""), 16) or 0
    sid = parse_hex_or_base64(str(ctx.get("span_id") or ""), 8) or 0
    psid = parse_hex_or_base64(str(obj.get("parent_id") or ""), 8) or 0
    col.trace_hi.append(tid >> 64)
    col.trace_lo.append(tid & 0xFFFFFFFFFFFFFFFF)
    col.span_id.append(sid)
    col.parent_span_id.append(psid)
    kind = str(obj.get("kind", "")).rsplit(".", 1)[-1]
    col.kind.append(SPAN_KINDS.get(f"SPAN_KIND_{kind}", 0))
    status = obj.get("status") or {}
    code = STATUS_CODES.get(str(status.get("status_code", "UNSET")), 0)
    col.status.append(code)
    if status.get("description"):
        col.status_message[row] = status["description"]
    b.ts.append(iso_ns(obj.get("start_time"), source))
    col.end.append(iso_ns(obj.get("end_time"), source))
    b.name.append(b.names.code(str(obj.get("name", ""))))
    b.cat.append(b.categories.code("otel"))
    b.correlation.append(-1)
    resource = (obj.get("resource") or {}).get("attributes") or {}
    col.resource.append(col.add_resource(sorted(resource.items())))
    for key, value in (obj.get("attributes") or {}).items():
        b.add_arg(row, key, value)
    for ev in obj.get("events") or []:
        col.add_event(row, iso_ns(ev.get("timestamp"), source), str(ev.get("name", "")), list((ev.get("attributes") or {}).items()))
    for link in obj.get("links") or []:
        lctx = link.get("context") or {}
        ltid = parse_hex_or_base64(str(lctx.get("trace_id") or ""), 16) or 0
        lsid = parse_hex_or_base64(str(lctx.get("span_id") or ""), 8) or 0
        col.add_link(row, ltid, lsid, list((link.get("attributes") or {}).items()))


def iso_ns(value: Any, source: str) -> int:
    """``2026-11-22T01:18:36.664521Z`` → Unix ns (µs resolution, as the exporter wrote it)."""
    if not isinstance(value, str):
        raise MalformedTraceError(f"span time is not an ISO timestamp: {value!r}", source=source)
    text = value.rstrip("Z")
    frac = 0
    if "." in text:
        text, f = text.split(".", 1)
        frac = int((f + "000000000")[:9])
    try:
        dt = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        raise MalformedTraceError(f"bad timestamp {value!r}", source=source) from None
    return int(dt.timestamp()) * 1_000_000_000 + frac

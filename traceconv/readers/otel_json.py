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
from traceconv.readers.json_salvage import JSON_ERRORS, close_truncated, error_offset, is_utf8
from traceconv.readers.otel import SpanCollector, parse_hex_or_base64

Num = Union[int, str]


class ArrayValue(msgspec.Struct, gc=False):
    values: list["AnyValue"] = []


class KeyValueList(msgspec.Struct, gc=False):
    values: list["KeyValue"] = []


class AnyValue(msgspec.Struct, gc=False):
    stringValue: Union[str, None] = None
    intValue: Union[Num, None] = None
    doubleValue: Union[float, str, None] = None
    boolValue: Union[bool, None] = None
    arrayValue: Union[ArrayValue, None] = None
    kvlistValue: Union[KeyValueList, None] = None
    bytesValue: Union[str, None] = None


class KeyValue(msgspec.Struct, gc=False):
    key: str = ""
    value: Union[AnyValue, None] = None


class Status(msgspec.Struct, gc=False):
    code: Union[int, str] = 0
    message: str = ""


class Event(msgspec.Struct, gc=False):
    timeUnixNano: Num = 0
    name: str = ""
    attributes: list[KeyValue] = []
    droppedAttributesCount: int = 0


class Link(msgspec.Struct, gc=False):
    traceId: str = ""
    spanId: str = ""
    traceState: str = ""
    attributes: list[KeyValue] = []
    droppedAttributesCount: int = 0
    flags: int = 0


class Span(msgspec.Struct, gc=False):
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


class Scope(msgspec.Struct, gc=False):
    name: str = ""
    version: str = ""
    attributes: list[KeyValue] = []


class ScopeSpans(msgspec.Struct, gc=False):
    scope: Union[Scope, None] = None
    instrumentationLibrary: Union[Scope, None] = None
    spans: list[Span] = []
    schemaUrl: str = ""


class Resource(msgspec.Struct, gc=False):
    attributes: list[KeyValue] = []
    droppedAttributesCount: int = 0


class ResourceSpans(msgspec.Struct, gc=False):
    resource: Union[Resource, None] = None
    scopeSpans: list[ScopeSpans] = []
    instrumentationLibrarySpans: list[ScopeSpans] = []
    schemaUrl: str = ""


class TracesData(msgspec.Struct, gc=False):
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
        return _int_or_text(v.intValue)
    if v.doubleValue is not None:
        return _float_or_text(v.doubleValue)
    if v.boolValue is not None:
        return v.boolValue
    if v.arrayValue is not None:
        return [any_value(x) for x in v.arrayValue.values]
    if v.kvlistValue is not None:
        return {kv.key: any_value(kv.value) for kv in v.kvlistValue.values}
    if v.bytesValue is not None:
        return v.bytesValue
    return None


def code_of(value: int | str, names: dict[str, int]) -> int:
    """A span kind or status code: an int in 0..127, or its enum name; anything else is 0."""
    if isinstance(value, int):
        return value if 0 <= value < 128 else 0
    return names.get(value, 0)


def _int_or_text(v: int | str) -> int | str:
    """An intValue; one that is not an integer is kept as its text (nothing is dropped)."""
    try:
        return int(v)
    except ValueError:
        return v  # type: ignore[return-value]


def _float_or_text(v: float | str) -> float | str:
    try:
        return float(v)
    except ValueError:
        return v  # type: ignore[return-value]


def _time(v: int | str) -> int:
    """A Unix-ns time field; -1 (rejected by `SpanCollector.times_ok`) if not an integer."""
    try:
        return int(v)
    except ValueError:
        return -1


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
        start = _time(sp.startTimeUnixNano)
        end = _time(sp.endTimeUnixNano)
        if not col.times_ok(start, end, sp.startTimeUnixNano, sp.endTimeUnixNano):
            return
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
        col.kind.append(code_of(sp.kind, SPAN_KINDS))
        st = sp.status
        code = 0
        if st is not None:
            code = code_of(st.code, STATUS_CODES)
            if st.message:
                col.status_message[row] = st.message
        col.status.append(code)
        b.ts.append(start)
        col.end.append(end)
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
                iv = _int_or_text(v.intValue)
                if isinstance(iv, str):
                    a_kind(0)
                    a_int(0)
                    a_dbl(0.0)
                    a_str(str_code(iv))
                elif -(1 << 63) <= iv < (1 << 63):
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
            elif isinstance(value, str):  # bytesValue: its base64 text, as the other readers keep it
                a_kind(ArgKind.STRING)
                a_int(0)
                a_dbl(0.0)
                a_str(str_code(value))
            else:
                a_kind(ArgKind.JSON)
                a_int(0)
                a_dbl(0.0)
                a_str(str_code(json.dumps(value, separators=(",", ":"))))
        if sp.events:
            for ev in sp.events:
                ts = _time(ev.timeUnixNano)
                if col.event_time_ok(ts):
                    col.add_event(row, ts, ev.name, _attrs(ev.attributes))
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
            doc = _salvage_cut(pending[2], source, pending[0], diag, last=False, why=pending[1])
            if doc is not None:
                good += 1
                yield pending[0], doc
            else:
                diag.stats["otlp_json_bad_line"] += 1
                diag.warnings.append(f"{source}:{pending[0]}: skipped a damaged line ({pending[1]})")
            pending = None
        try:
            doc = decode_document(line, source, lineno, diag)
        except JSON_ERRORS as e:
            if good == 0 and not _salvage_cut(line, source, lineno, None, last=False):
                raise _not_otlp(line, source, lineno, e) from None
            pending = (lineno, _short(e), line)
            continue
        if doc.resourceSpans is None and doc.batches is None:
            if good == 0:
                raise _not_otlp(line, source, lineno, ValueError("no resourceSpans"))
            pending = (lineno, "no resourceSpans", b"")
            continue
        good += 1
        yield lineno, doc
    if pending is not None:
        diag.stats["otlp_json_truncated_last_line"] += 1
        doc = _salvage_cut(pending[2], source, pending[0], diag, last=True)
        kept = f" and the {_count_spans(doc)} complete spans of the incomplete line" if doc is not None else ""
        diag.warnings.append(
            f"{source}:{pending[0]}: last line is incomplete ({pending[1]}); kept the {good} complete lines before it{kept}, "
            "lost the unfinished span and anything after it"
        )
        if doc is not None:
            yield pending[0], doc


def decode_document(line: bytes, source: str, lineno: int, diag) -> TracesData:
    """One OTLP/JSON document, repairing what can be repaired (each counted in `diag.stats`):
    invalid UTF-8 (→ U+FFFD), NaN/Infinity literals (Python's json.dumps writes them), spans of
    the wrong shape (numbers where strings belong are converted, the rest dropped)."""
    try:
        return _decode_line(line)
    except msgspec.ValidationError:
        obj = msgspec.json.decode(line)
    except UnicodeDecodeError:
        line = line.decode("utf-8", "replace").encode()
        diag.stats["otlp_json_invalid_utf8"] += 1
        diag.warnings.append(f"{source}:{lineno}: invalid UTF-8 replaced by U+FFFD")
        return decode_document(line, source, lineno, diag)
    except msgspec.DecodeError:
        try:  # NaN, Infinity: not JSON, but Python writes them
            obj = json.loads(line)
        except (ValueError, RecursionError):
            raise msgspec.DecodeError(_short_decode_error(line)) from None
        diag.stats["otlp_json_nonstandard"] += 1
        diag.warnings.append(f"{source}:{lineno}: non-standard JSON (NaN/Infinity) read leniently")
    return salvage_document(obj, source, lineno, diag)


def _short_decode_error(line: bytes) -> str:
    try:
        msgspec.json.decode(line)
    except (msgspec.DecodeError, RecursionError) as e:
        return _short(e) if isinstance(e, msgspec.DecodeError) else "JSON nested too deeply"
    return "invalid JSON"


_STR_FIELDS = ("traceId", "spanId", "parentSpanId", "traceState", "name")


def salvage_document(obj: Any, source: str, lineno: int, diag) -> TracesData:
    """A document that failed the typed decode, converted piece by piece: spans that still do
    not fit are dropped and counted (``otlp_json_bad_span``)."""
    if not isinstance(obj, dict):
        raise msgspec.ValidationError(f"Expected `object`, got `{type(obj).__name__}`")
    groups = obj.get("resourceSpans", obj.get("batches"))
    if not isinstance(groups, list):
        return msgspec.convert(obj, TracesData)  # raises the precise ValidationError
    bad = fixed = 0
    out = []
    for rs in groups:
        if not isinstance(rs, dict):
            bad += 1
            continue
        resource = _convert_or(rs.get("resource"), Resource)
        scopes = []
        for key in ("scopeSpans", "instrumentationLibrarySpans"):
            for ss in rs.get(key) or [] if isinstance(rs.get(key) or [], list) else []:
                if not isinstance(ss, dict):
                    bad += 1
                    continue
                scope = _convert_or(ss.get("scope") or ss.get("instrumentationLibrary"), Scope)
                spans = []
                for sp in ss.get("spans") or [] if isinstance(ss.get("spans") or [], list) else []:
                    try:
                        spans.append(msgspec.convert(sp, Span))
                        continue
                    except (msgspec.ValidationError, TypeError):
                        pass
                    if isinstance(sp, dict):
                        sp = {k: (str(v) if k in _STR_FIELDS and isinstance(v, (int, float)) else v) for k, v in sp.items()}
                        if isinstance(sp.get("status"), dict) and isinstance(sp["status"].get("message"), (int, float)):
                            sp["status"] = dict(sp["status"], message=str(sp["status"]["message"]))
                    try:
                        spans.append(msgspec.convert(sp, Span))
                        fixed += 1
                    except (msgspec.ValidationError, TypeError):
                        bad += 1
                scopes.append(ScopeSpans(scope=scope, spans=spans))
        out.append(ResourceSpans(resource=resource, scopeSpans=scopes))
    if bad:
        diag.stats["otlp_json_bad_span"] += bad
        diag.warnings.append(f"{source}{':' if lineno else ''}{lineno}: dropped {bad} spans (or groups) of the wrong shape, kept the rest of the line")
    if fixed:
        diag.stats["otlp_json_span_repaired"] += fixed
        diag.warnings.append(f"{source}{':' if lineno else ''}{lineno}: {fixed} spans had numbers where OTLP has strings: converted")
    return TracesData(resourceSpans=out)


def _convert_or(value: Any, typ) -> Any:
    if value is None:
        return None
    try:
        return msgspec.convert(value, typ)
    except (msgspec.ValidationError, TypeError):
        return None


def _salvage_cut(line: bytes, source: str, lineno: int, diag, last: bool, why: str = "") -> TracesData | None:
    """The complete spans of a damaged or cut line: cut back to the last whole span, closed."""
    if not line.lstrip().startswith(b"{"):
        return None
    if not is_utf8(line):
        line = line.decode("utf-8", "replace").encode()
    before = None
    for _ in range(3):
        closed = close_truncated(line, b"spans", before)
        if closed is None:
            return None
        try:
            doc = _decode_line(closed)
        except msgspec.ValidationError:
            try:
                doc = salvage_document(msgspec.json.decode(closed), source, lineno, diag) if diag is not None else None
            except JSON_ERRORS:
                return None
            if doc is None:
                return TracesData(resourceSpans=[])  # a probe (diag None): salvageable
        except (msgspec.DecodeError, RecursionError) as e:
            before = error_offset(str(e)) if isinstance(e, msgspec.DecodeError) else None
            if before is None:
                return None
            continue
        if doc.resourceSpans is None and doc.batches is None:
            return None
        n = _count_spans(doc)
        if n == 0:
            return None
        if diag is not None and not last:
            diag.stats["otlp_json_damaged_line_salvaged"] += 1
            diag.warnings.append(f"{source}:{lineno}: damaged line ({why or 'cut'}): kept its {n} complete spans before the damage")
        return doc
    return None


def _count_spans(doc: TracesData | None) -> int:
    if doc is None:
        return 0
    return sum(len(ss.spans) for rs in (doc.resourceSpans or doc.batches or ()) for ss in (rs.scopeSpans or rs.instrumentationLibrarySpans))


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:160]


def _not_otlp(line: bytes, source: str, lineno: int, e: Exception) -> Exception:
    try:
        obj = json.loads(line)
    except RecursionError:
        return MalformedTraceError("invalid JSON (nested too deeply)", source=source, where=f"line {lineno}")
    except ValueError:
        return MalformedTraceError(f"invalid JSON ({_short(e)})", source=source, where=f"line {lineno}")
    if isinstance(obj, dict) and "traceEvents" in obj:
        return UnsupportedFormatError("this is a PyTorch/Chrome trace, not OTel spans: use `traceconv torch2perfetto`", source=source)
    return UnsupportedFormatError(f"JSON but not OTLP spans ({_short(e)})", source=source, where=f"line {lineno}")


def iter_array(data: bytes, source: str) -> Iterator[TracesData]:
    try:
        docs = _decode_array(data)
    except RecursionError:
        raise MalformedTraceError("JSON nested too deeply", source=source) from None
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as e:
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
        except (ValueError, RecursionError) as e:
            msg = e.msg if isinstance(e, json.JSONDecodeError) else "JSON nested too deeply"
            line = text.count("\n", 0, pos) + 1
            if pos == 0:
                raise MalformedTraceError(f"invalid JSON ({msg})", source=source, where=f"line {line}") from None
            diag.stats["json_truncated_tail"] += 1
            diag.warnings.append(f"{source}:{line}: unreadable JSON from here on ({msg}); skipped the rest")
            return
        yield obj


def console_span(obj: dict, col: SpanCollector, source: str) -> bool:
    """A `span.to_json()` object from the Python SDK's ConsoleSpanExporter (False: skipped,
    its times are unusable; counted by the collector)."""
    b = col.b
    row = len(b.ts)
    start, end = iso_ns(obj.get("start_time")), iso_ns(obj.get("end_time"))
    if not col.times_ok(start, end, obj.get("start_time"), obj.get("end_time")):
        return False
    ctx = obj.get("context") or {}
    if not isinstance(ctx, dict):
        ctx = {}
    tid = parse_hex_or_base64(str(ctx.get("trace_id") or ""), 16) or 0
    sid = parse_hex_or_base64(str(ctx.get("span_id") or ""), 8) or 0
    psid = parse_hex_or_base64(str(obj.get("parent_id") or ""), 8) or 0
    col.trace_hi.append(tid >> 64)
    col.trace_lo.append(tid & 0xFFFFFFFFFFFFFFFF)
    col.span_id.append(sid)
    col.parent_span_id.append(psid)
    kind = str(obj.get("kind", "")).rsplit(".", 1)[-1]
    col.kind.append(SPAN_KINDS.get(f"SPAN_KIND_{kind}", 0))
    status = _mapping(obj.get("status"))
    code = STATUS_CODES.get(str(status.get("status_code", "UNSET")), 0)
    col.status.append(code)
    if status.get("description"):
        col.status_message[row] = str(status["description"])
    b.ts.append(start)
    col.end.append(end)
    b.name.append(b.names.code(str(obj.get("name", ""))))
    b.cat.append(b.categories.code("otel"))
    b.correlation.append(-1)
    resource = _mapping(_mapping(obj.get("resource")).get("attributes"))
    col.resource.append(col.add_resource(sorted((str(k), v) for k, v in resource.items())))
    for key, value in _mapping(obj.get("attributes")).items():
        b.add_arg(row, str(key), value)
    for ev in _dicts(obj.get("events")):
        ts = iso_ns(ev.get("timestamp"))
        if col.event_time_ok(ts):
            col.add_event(row, ts, str(ev.get("name", "")), list(_mapping(ev.get("attributes")).items()))
    for link in _dicts(obj.get("links")):
        lctx = link.get("context") or {}
        if not isinstance(lctx, dict):
            lctx = {}
        ltid = parse_hex_or_base64(str(lctx.get("trace_id") or ""), 16) or 0
        lsid = parse_hex_or_base64(str(lctx.get("span_id") or ""), 8) or 0
        col.add_link(row, ltid, lsid, list(_mapping(link.get("attributes")).items()))
    return True


def _dicts(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def iso_ns(value: Any) -> int:
    """``2026-11-22T01:18:36.664521Z`` → Unix ns (µs resolution, as the exporter wrote it);
    -1 (rejected by `SpanCollector.times_ok`) if it is not such a timestamp."""
    if not isinstance(value, str):
        return -1
    text = value.rstrip("Z")
    frac = 0
    if "." in text:
        text, f = text.split(".", 1)
        if not f.isdigit():
            return -1
        frac = int((f + "000000000")[:9])
    try:
        dt = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return -1
    return int(dt.timestamp()) * 1_000_000_000 + frac

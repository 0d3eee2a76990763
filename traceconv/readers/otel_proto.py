"""OTLP protobuf span dumps: Collector ``format: proto`` (4-byte big-endian length per message,
optionally each message zstd-compressed), varint-delimited streams and single raw messages.

`TracesData` and `ExportTraceServiceRequest` are the same on the wire, so both decode here.
"""

from __future__ import annotations

import io
from typing import Any, Iterator

from traceconv.errors import MalformedTraceError
from traceconv.readers.otel import SpanCollector
from traceconv.readers.source import ZSTD_MAGIC

MAX_MESSAGE = 1 << 30


def _traces_data():
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    return TracesData


def looks_be_framed(head: bytes, size: int | None) -> bool:
    if len(head) < 5:
        return False
    length = int.from_bytes(head[:4], "big")
    if length == 0 or length > MAX_MESSAGE or (size is not None and length + 4 > size):
        return False
    return head[4] == 0x0A or head[4:8] == ZSTD_MAGIC or head[4:5] == b"{"


def iter_be_frames(stream: io.BufferedReader, source: str, diag) -> Iterator[tuple[int, bytes]]:
    """(byte offset, message) for each length-prefixed message; a cut tail is counted."""
    offset = 0
    while True:
        head = stream.read(4)
        if not head:
            return
        if len(head) < 4:
            _truncated(diag, source, offset, "length prefix")
            return
        length = int.from_bytes(head, "big")
        if length > MAX_MESSAGE:
            raise MalformedTraceError(f"implausible message length {length}", source=source, where=f"offset {offset}")
        body = stream.read(length)
        if len(body) < length:
            _truncated(diag, source, offset, f"message of {length} bytes")
            return
        yield offset, body
        offset += 4 + length


def iter_varint_frames(data: bytes, source: str, diag) -> Iterator[tuple[int, bytes]]:
    pos = 0
    n = len(data)
    while pos < n:
        start = pos
        length = 0
        shift = 0
        while True:
            if pos >= n:
                _truncated(diag, source, start, "varint length")
                return
            byte = data[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
            if shift > 63:
                raise MalformedTraceError("bad varint length prefix", source=source, where=f"offset {start}")
        if pos + length > n:
            _truncated(diag, source, start, f"message of {length} bytes")
            return
        yield start, data[pos : pos + length]
        pos += length


def _truncated(diag, source: str, offset: int, what: str) -> None:
    diag.stats["otlp_proto_truncated_tail"] += 1
    diag.warnings.append(f"{source}: offset {offset}: file ends inside a {what}; kept the complete messages before it")


def parse_message(body: bytes, source: str, where: str):
    from google.protobuf.message import DecodeError

    msg = _traces_data()()
    try:
        msg.ParseFromString(body)
    except DecodeError as e:
        raise MalformedTraceError(f"not an OTLP protobuf message ({e})", source=source, where=where) from None
    return msg


def _any(v) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_any(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _any(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        import base64

        return base64.b64encode(v.bytes_value).decode()
    return getattr(v, which)


def count_spans(msg) -> int:
    return sum(len(ss.spans) for rs in msg.resource_spans for ss in rs.scope_spans)


def walk_proto(msg, col: SpanCollector) -> int:
    """Append every span of a decoded `TracesData` to the collector."""
    b = col.b
    n0 = col.num_spans
    for rs in msg.resource_spans:
        res = col.add_resource([(kv.key, _any(kv.value)) for kv in rs.resource.attributes])
        for ss in rs.scope_spans:
            cat = b.categories.code(ss.scope.name or "otel")
            for sp in ss.spans:
                if not col.times_ok(sp.start_time_unix_nano, sp.end_time_unix_nano, sp.start_time_unix_nano, sp.end_time_unix_nano):
                    continue
                row = len(b.ts)
                tid = int.from_bytes(sp.trace_id, "big") if len(sp.trace_id) == 16 else 0
                col.trace_hi.append(tid >> 64)
                col.trace_lo.append(tid & 0xFFFFFFFFFFFFFFFF)
                col.span_id.append(int.from_bytes(sp.span_id, "big") if len(sp.span_id) == 8 else 0)
                col.parent_span_id.append(int.from_bytes(sp.parent_span_id, "big") if len(sp.parent_span_id) == 8 else 0)
                col.kind.append(sp.kind if 0 <= sp.kind < 128 else 0)
                col.status.append(sp.status.code if 0 <= sp.status.code < 128 else 0)
                if sp.status.message:
                    col.status_message[row] = sp.status.message
                b.ts.append(sp.start_time_unix_nano)
                col.end.append(sp.end_time_unix_nano)
                b.name.append(b.names.code(sp.name))
                b.cat.append(cat)
                b.correlation.append(-1)
                col.resource.append(res)
                for kv in sp.attributes:
                    b.add_arg(row, kv.key, _any(kv.value))
                for ev in sp.events:
                    if col.event_time_ok(ev.time_unix_nano):
                        col.add_event(row, ev.time_unix_nano, ev.name, [(kv.key, _any(kv.value)) for kv in ev.attributes])
                for link in sp.links:
                    ltid = int.from_bytes(link.trace_id, "big") if link.trace_id else 0
                    lsid = int.from_bytes(link.span_id, "big") if link.span_id else 0
                    col.add_link(row, ltid, lsid, [(kv.key, _any(kv.value)) for kv in link.attributes])
                if sp.trace_state:
                    b.add_arg(row, "otel.trace_state", sp.trace_state)
                if sp.flags:
                    b.add_arg(row, "otel.flags", sp.flags)
                for what, count in (("attributes", sp.dropped_attributes_count), ("events", sp.dropped_events_count), ("links", sp.dropped_links_count)):
                    if count:
                        b.add_arg(row, f"otel.dropped_{what}_count", count)
    return col.num_spans - n0

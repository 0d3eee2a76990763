"""Read OTel span dumps in any supported container, sniffed from their bytes.

Sniffing (after gzip/zstd are undone): ``{`` → JSON Lines (or, if the first line is not a
whole JSON value, pretty-printed / ConsoleSpanExporter objects back to back); ``[`` → a JSON
array; otherwise protobuf: 4-byte big-endian framing (messages optionally zstd-compressed,
also holding JSON), then a single raw message, then varint framing.
"""

from __future__ import annotations

import io
import itertools
import os
from typing import Iterable

import msgspec

from traceconv.errors import MalformedTraceError, UnsupportedFormatError
from traceconv.forked import trim_heap
from traceconv.model.trace import Trace
from traceconv.readers import otel_json, otel_proto
from traceconv.readers.otel import SpanCollector
from traceconv.readers.otel_columns import line_views, read_array_columns, read_jsonl_columns
from traceconv.readers.source import ZSTD_MAGIC, Source, open_source

def read_otel(inputs: Iterable, *, progress=None) -> Trace:
    """Read one or more OTel span dumps (paths or binary streams) into one `Trace`.

    Spans are resolved across all inputs, so rotated files and per-process dumps join up.
    """
    col = SpanCollector()
    for src in inputs:
        source = open_source(src)
        try:
            n = _read_source(source, col, progress)
            if n is None:  # the fast path declined: read again, line by line
                source.close()
                source = open_source(src)
                n = _read_source(source, col, progress, fast=False)
        finally:
            source.close()
        for note in source.damage:
            col.b.stats["compressed_stream_damaged"] += 1
            col.b.warnings.append(f"{source.name}: {note}; kept what came before")
        col.sources.append({"name": source.name, "compression": source.compression, "spans": n})
    trim_heap()  # (the decoded batches' pages back before build's temporaries)
    return col.build()


def _read_source(source: Source, col: SpanCollector, progress, fast: bool = True) -> int | None:
    head = source.stream.peek(1 << 16)[: 1 << 16]
    if not head:
        if source.damage:
            raise MalformedTraceError(f"unreadable: {source.damage[0]}", source=source.name)
        raise MalformedTraceError("empty file", source=source.name)
    stripped = head.lstrip()
    first = stripped[:1]
    if first == b"{":
        return _read_json_objects(source, col, progress, fast)
    if first == b"[":
        if fast and _can_read_again(source):
            return read_array_columns(source.stream, col)  # (None: read again, whole)
        docs = list(otel_json.iter_array(source.stream.read(), source.name))
        walker = otel_json.JsonSpanWalker(col, source.name)
        n = sum(walker.walk(doc) for doc in docs)
        _bad_ids(walker, col, source)
        return n
    if not stripped and len(head) < (1 << 16):
        raise MalformedTraceError("file holds only whitespace", source=source.name)
    return _read_binary(source, col, head, progress)


def _can_read_again(source: Source) -> bool:
    """A file the fast paths may give up on: it is read again from the start."""
    return isinstance(source._raw, io.BufferedReader) and bool(source.name) and os.path.isfile(source.name)


def _read_json_objects(source: Source, col: SpanCollector, progress, fast: bool) -> int | None:
    stream = source.stream
    first_line = b""
    while not first_line.strip():
        first_line = stream.readline()
        if not first_line:
            break
    try:
        json_line = msgspec.json.decode(first_line.strip()) is not None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        json_line = False
    # a first line that is OTLP/JSON but damaged or cut: still JSON Lines (salvaged line by line)
    json_line = json_line or first_line.lstrip().startswith((b'{"resourceSpans"', b'{"batches"'))
    walker = otel_json.JsonSpanWalker(col, source.name)
    n = 0
    if json_line:
        if fast and _can_read_again(source):
            return read_jsonl_columns(line_views(first_line, stream), col)  # (None: read again, line by line)
        for lineno, doc in otel_json.iter_jsonl(itertools.chain([first_line], stream), source.name, col.b):
            n += walker.walk(doc)
            if progress is not None and lineno % 256 == 0:
                progress(source, lineno)
        _bad_ids(walker, col, source)
        return n
    data = first_line + source.stream.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")
        col.b.stats["otlp_json_invalid_utf8"] += 1
        col.b.warnings.append(f"{source.name}: invalid UTF-8 replaced by U+FFFD")
    for obj in otel_json.iter_concatenated(text, source.name, col.b):
        if not isinstance(obj, dict):
            raise UnsupportedFormatError("JSON but not OTLP spans", source=source.name)
        if "resourceSpans" in obj or "batches" in obj:
            try:
                doc = otel_json.salvage_document(obj, source.name, "", col.b)  # spans of the wrong shape: dropped, counted
            except msgspec.ValidationError as e:
                raise MalformedTraceError(f"bad OTLP document ({e})", source=source.name) from None
            n += walker.walk(doc)
        elif "context" in obj and "name" in obj:
            n += otel_json.console_span(obj, col, source.name)
        elif "traceEvents" in obj:
            raise UnsupportedFormatError("this is a PyTorch/Chrome trace, not OTel spans: use `traceconv torch2perfetto`", source=source.name)
        elif "data" in obj:
            raise UnsupportedFormatError("Jaeger JSON is not supported yet; export OTLP (collector `file` exporter) instead", source=source.name)
        else:
            raise UnsupportedFormatError("JSON but not OTLP spans", source=source.name)
    _bad_ids(walker, col, source)
    return n


def _unzstd(body: bytes, name: str, offset: int) -> bytes:
    import zstandard

    try:
        out = zstandard.ZstdDecompressor().decompressobj().decompress(body)
    except zstandard.ZstdError as e:
        raise MalformedTraceError(f"bad zstd frame ({e})", source=name, where=f"offset {offset}") from None
    return out


def _bad_ids(walker: otel_json.JsonSpanWalker, col: SpanCollector, source: Source) -> None:
    if walker.bad_ids:
        col.b.stats["span_bad_id"] += walker.bad_ids
        col.b.warnings.append(f"{source.name}: {walker.bad_ids} spans had ids that are neither hex nor base64 (kept, id 0)")


def _read_binary(source: Source, col: SpanCollector, head: bytes, progress) -> int:
    name = source.name
    if head[:8] == b"\x89PNG\r\n\x1a\n" or head[:4] == b"PK\x03\x04" or head[:6] == b"SQLite":
        raise UnsupportedFormatError("not an OTel span dump (binary file of another kind)", source=name)
    if head[:16] == bytes(16):  # empty frames only (/dev/zero, a zero-filled preallocated file): never an exporter's output
        raise UnsupportedFormatError("not an OTel span dump (it starts with NUL bytes)", source=name)
    n = 0
    if otel_proto.looks_be_framed(head, None if source.compression else source.size):
        walker = None
        good = 0
        for offset, body in otel_proto.iter_be_frames(source.stream, name, col.b):
            try:
                if body[:4] == ZSTD_MAGIC:
                    body = _unzstd(body, name, offset)
                if body.lstrip()[:1] == b"{":
                    walker = walker or otel_json.JsonSpanWalker(col, name)
                    try:
                        doc = otel_json.decode_document(body, name, f"offset {offset}", col.b)
                    except otel_json.JSON_ERRORS as e:
                        raise MalformedTraceError(f"bad OTLP/JSON message ({otel_json._short(e)})", source=name, where=f"offset {offset}") from None
                    n += walker.walk(doc)
                else:
                    n += otel_proto.walk_proto(otel_proto.parse_message(body, name, f"offset {offset}"), col)
            except MalformedTraceError as e:
                if good == 0:
                    raise
                col.b.stats["otlp_proto_bad_message"] += 1
                col.b.warnings.append(f"skipped a damaged message: {e}")
                continue
            good += 1
        if walker is not None:
            _bad_ids(walker, col, source)
        return n
    data = source.stream.read()
    if data[:1] == b"\x0a":
        try:
            msg = otel_proto.parse_message(data, name, "offset 0")
        except MalformedTraceError:
            msg = None
        if msg is not None and otel_proto.count_spans(msg):  # (any protobuf parses as something)
            return otel_proto.walk_proto(msg, col)
    try:
        for offset, body in otel_proto.iter_varint_frames(data, name, col.b):
            n += otel_proto.walk_proto(otel_proto.parse_message(body, name, f"offset {offset}"), col)
    except MalformedTraceError:
        raise UnsupportedFormatError("not an OTel span dump (neither OTLP/JSON nor OTLP protobuf)", source=name) from None
    if n == 0 and data:
        raise UnsupportedFormatError("not an OTel span dump (no spans found)", source=name)
    return n


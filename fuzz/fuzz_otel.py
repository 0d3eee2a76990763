"""Fuzz the OTel span-dump reader (JSON Lines, JSON arrays, console output, OTLP protobuf,
gzip/zstd) and both writers. Usage: see fuzz/README.md."""

import atexit
import io
import os
import tempfile
from collections import Counter

from _common import TraceconvError, atheris, main, write_both

with atheris.instrument_imports(include=["traceconv"]):
    from traceconv.readers import otel_columns, otel_dump, read_otel
    from traceconv.readers.otel import SpanCollector

_TMP = os.path.join(tempfile.gettempdir(), f"fuzz_otel_{os.getpid()}.jsonl")
_NATIVE = otel_columns._otlp_json  # the C reader of JSON Lines (None: not built, or TRACECONV_NO_C)
_SEEN: Counter = Counter()  # C reader: what its `scan` / `finish` calls did


def _report() -> None:
    if _SEEN:
        print(f"C reader check: {dict(_SEEN)}", flush=True)


atexit.register(_report)  # (libFuzzer leaves without atexit when it stops: also every 1000 inputs)


class _Spy:
    """The C module, what its `scan` and `finish` calls did counted."""

    def scan(self, *args):
        r = _NATIVE.scan(*args)
        if r is None:
            _SEEN["scan declined"] += 1
        return r

    def finish(self, *args):
        try:
            r = _NATIVE.finish(*args)
        except Exception as e:
            _SEEN[f"finish raised {type(e).__name__}"] += 1
            raise
        _SEEN["finish declined" if r is None else "accepted"] += 1
        return r

    def count_objects(self, text):
        return _NATIVE.count_objects(text)


def test_one_input(data: bytes) -> None:
    # every other input through a real file, so the column fast path for JSON Lines is fuzzed
    # too, and checked (with that for JSON arrays) against the line-by-line reader
    if data[:1] and data[0] & 1:
        with open(_TMP, "wb") as f:
            f.write(data)
        src = _TMP
    else:
        src = io.BytesIO(data)
    if _NATIVE is not None and data.lstrip()[:1] == b"{":
        _same_with_and_without_c(data)
    try:
        trace = read_otel([src])
    except TraceconvError:
        return
    write_both(trace)
    if src == _TMP:
        _same_as_line_by_line(trace, data)


def _tables(trace) -> tuple:
    got = [getattr(trace, name).to_pylist() for name in ("slices", "args", "flows", "tracks", "processes")]
    got[1].sort(key=lambda a: a["owner"])  # (each slice's args in their order; the readers interleave slices)
    return repr(got), dict(trace.stats), trace.warnings  # (repr: NaN equals NaN)


def _same_as_line_by_line(trace, data: bytes) -> None:
    fast = otel_dump.read_jsonl_columns, otel_dump.read_array_columns
    otel_dump.read_jsonl_columns = otel_dump.read_array_columns = lambda docs, col: None
    try:
        slow = read_otel([_TMP])
    finally:
        otel_dump.read_jsonl_columns, otel_dump.read_array_columns = fast
    if _tables(trace) != _tables(slow):
        raise AssertionError("the column fast path and the line-by-line reader disagree")


def _collected(lines: list[bytes], native) -> tuple:
    """What `read_jsonl_columns` leaves in a fresh collector, with the C reader or without: its
    columns byte for byte, string pools in order, status messages, link attributes, and each
    span's resource (by value: resources the C reader adds before it declines a document stay,
    unused, and shift later indices; see tests/test_otlp_native.py)."""
    col = SpanCollector()
    otel_columns._otlp_json = native
    try:
        n = otel_columns.read_jsonl_columns(lines, col)
    finally:
        otel_columns._otlp_json = _NATIVE
    b = col.b
    columns = [a.tobytes() for a in otel_columns._columns(col) if a is not col.resource]
    pools = [list(p.values) for p in (b.names, b.arg_keys, b.arg_strings, b.categories)]
    span_resources = [col.resources[r] for r in col.resource] if n is not None else None
    return n, columns, pools, sorted(col.status_message.items()), repr(sorted(col.l_attrs.items())), repr(span_resources)


def _same_with_and_without_c(data: bytes) -> None:
    """JSON Lines read by the C reader must give exactly what the msgspec column path gives
    (a batch it declines is read by that path: the same outcome too)."""
    lines = list(io.BytesIO(data))  # (as a file's lines)
    _SEEN["inputs checked"] += 1
    if _SEEN["inputs checked"] % 1000 == 0:
        _report()
    got, want = _collected(lines, _Spy()), _collected(lines, None)
    if got != want:
        which = [name for name, g, w in zip(("count", "columns", "pools", "status messages", "link attributes", "resources"), got, want) if g != w]
        raise AssertionError(f"the C reader and the msgspec column path disagree: {', '.join(which)}")


if __name__ == "__main__":
    main(test_one_input)

"""Fuzz the OTel span-dump reader (JSON Lines, JSON arrays, console output, OTLP protobuf,
gzip/zstd) and both writers. Usage: see fuzz/README.md."""

import io
import os
import tempfile

from _common import TraceconvError, atheris, main, write_both

with atheris.instrument_imports(include=["traceconv"]):
    from traceconv.readers import otel_dump, read_otel

_TMP = os.path.join(tempfile.gettempdir(), f"fuzz_otel_{os.getpid()}.jsonl")


def test_one_input(data: bytes) -> None:
    # every other input through a real file, so the column fast path for JSON Lines is fuzzed
    # too, and checked (with that for JSON arrays) against the line-by-line reader
    if data[:1] and data[0] & 1:
        with open(_TMP, "wb") as f:
            f.write(data)
        src = _TMP
    else:
        src = io.BytesIO(data)
    try:
        trace = read_otel([src])
    except TraceconvError:
        return
    write_both(trace)
    if src == _TMP:
        _same_as_line_by_line(trace)


def _tables(trace) -> tuple:
    got = [getattr(trace, name).to_pylist() for name in ("slices", "args", "flows", "tracks", "processes")]
    got[1].sort(key=lambda a: a["owner"])  # (each slice's args in their order; the readers interleave slices)
    return repr(got), dict(trace.stats), trace.warnings  # (repr: NaN equals NaN)


def _same_as_line_by_line(trace) -> None:
    fast = otel_dump.read_jsonl_columns, otel_dump.read_array_columns
    otel_dump.read_jsonl_columns = otel_dump.read_array_columns = lambda docs, col: None
    try:
        slow = read_otel([_TMP])
    finally:
        otel_dump.read_jsonl_columns, otel_dump.read_array_columns = fast
    if _tables(trace) != _tables(slow):
        raise AssertionError("the column fast path and the line-by-line reader disagree")


if __name__ == "__main__":
    main(test_one_input)

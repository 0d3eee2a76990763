"""Fuzz the OTel span-dump reader (JSON Lines, JSON arrays, console output, OTLP protobuf,
gzip/zstd) and both writers. Usage: see fuzz/README.md."""

import io
import os
import tempfile

from _common import TraceconvError, atheris, main, write_both

with atheris.instrument_imports(include=["traceconv"]):
    from traceconv.readers import read_otel

_TMP = os.path.join(tempfile.gettempdir(), f"fuzz_otel_{os.getpid()}.jsonl")


def test_one_input(data: bytes) -> None:
    # every other input through a real file, so Arrow's fast JSON Lines path is fuzzed too
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


if __name__ == "__main__":
    main(test_one_input)

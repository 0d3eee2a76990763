"""Fuzz the streaming PyTorch-profiler (Kineto) / Chrome JSON reader and both writers.
Usage: see fuzz/README.md."""

import io

from _common import TraceconvError, atheris, main, write_both

with atheris.instrument_imports(include=["traceconv"]):
    from traceconv.readers.kineto import read_kineto


def test_one_input(data: bytes) -> None:
    try:
        trace = read_kineto(io.BytesIO(data), name="fuzz.trace.json")
    except TraceconvError:
        return
    write_both(trace)


if __name__ == "__main__":
    main(test_one_input)

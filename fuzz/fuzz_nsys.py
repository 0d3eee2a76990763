"""Fuzz the Nsight Systems SQLite-export reader and both writers: the bytes become a file (the
reader opens SQLite by path). Seed it with real exports so mutations hit SQLite pages and
table contents. Usage: see fuzz/README.md."""

import os
import tempfile

from _common import TraceconvError, atheris, main, write_both

with atheris.instrument_imports(include=["traceconv"]):
    from traceconv.readers.nsys import read_nsys

_TMP = os.path.join(tempfile.gettempdir(), f"fuzz_nsys_{os.getpid()}.sqlite")


def test_one_input(data: bytes) -> None:
    with open(_TMP, "wb") as f:
        f.write(data)
    try:
        trace = read_nsys(_TMP)
    except TraceconvError:
        return
    write_both(trace)


if __name__ == "__main__":
    main(test_one_input)

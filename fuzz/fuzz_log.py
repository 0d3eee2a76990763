"""Fuzz the SGLang scheduler-log parser (`analyzers.sglang_log`, behind `traceconv iters`):
it must never raise on any bytes. Usage: see fuzz/README.md."""

import io

from _common import TraceconvError, atheris, main

with atheris.instrument_imports(include=["analyzers", "traceconv"]):
    from analyzers import sglang_log


def test_one_input(data: bytes) -> None:
    try:
        df = sglang_log.parse_log(io.BytesIO(data), block_size=4096)
    except TraceconvError:
        return
    assert df["line"].is_monotonic_increasing


if __name__ == "__main__":
    main(test_one_input)

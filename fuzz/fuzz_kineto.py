"""Fuzz the streaming PyTorch-profiler (Kineto) / Chrome JSON reader and both writers; and check
that the event scanner finds the same events, header and truncation whatever its read block
(a small block, picked from the input, against the default). Usage: see fuzz/README.md."""

import io

from _common import TraceconvError, atheris, main, write_both

with atheris.instrument_imports(include=["traceconv"]):
    from traceconv.readers.json_events import ScanResult, iter_event_chunks, split_events
    from traceconv.readers.kineto import read_kineto


def scan(data: bytes, block: int) -> tuple:
    result = ScanResult()
    events = [e for chunk in iter_event_chunks(io.BytesIO(data), result, block=block) for e in split_events(chunk)]
    return events, bytes(result.header), result.truncated, result.truncated_at, result.events_seen, result.bare_array


def test_one_input(data: bytes) -> None:
    if data:
        small = 1 + data[-1] % 61
        assert scan(data, small) == scan(data, 1 << 20), f"block {small} disagrees with 1 MB"
    try:
        trace = read_kineto(io.BytesIO(data), name="fuzz.trace.json")
    except TraceconvError:
        return
    write_both(trace)


if __name__ == "__main__":
    main(test_one_input)

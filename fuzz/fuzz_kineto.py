"""Fuzz the streaming PyTorch-profiler (Kineto) / Chrome JSON reader and both writers; and check
that the event scanner finds the same events, header, truncation and stray text whatever its read block
(a small block, picked from the input, against the default) and whether or not it takes the
fast path (blocks cut at the text between events, proven by decoding them). Usage: see fuzz/README.md."""

import io

from _common import TraceconvError, atheris, main, write_both

with atheris.instrument_imports(include=["traceconv"]):
    from traceconv.readers.json_events import ScanResult, iter_event_chunks, split_events
    from traceconv.readers.kineto import _decode_whole, read_kineto


def scan(data: bytes, block: int, fast: bool = False) -> tuple:
    result = ScanResult()
    decode = _decode_whole if fast else None
    events, stray = [], 0
    for chunk, _ in iter_event_chunks(io.BytesIO(data), result, block=block, decode=decode):
        got, gaps = split_events(chunk)
        events += got
        stray += gaps
    # text between events is seen at the blocks' edges by the scanner and inside them by
    # split_events: whether there is any must not depend on where the blocks end
    return events, bytes(result.header), result.truncated, result.truncated_at, result.events_seen, result.bare_array, \
        result.stray or stray > 0


def test_one_input(data: bytes) -> None:
    if data:
        small = 1 + data[-1] % 61
        careful = scan(data, 1 << 20)
        assert scan(data, small) == careful, f"block {small} disagrees with 1 MB"
        assert scan(data, small, fast=True) == careful, f"block {small} with the fast path disagrees"
    try:
        trace = read_kineto(io.BytesIO(data), name="fuzz.trace.json")
    except TraceconvError:
        return
    write_both(trace)


if __name__ == "__main__":
    main(test_one_input)

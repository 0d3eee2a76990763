"""Fuzz the SGLang scheduler-log parser (`analyzers.sglang_log`, behind `traceconv iters`):
it must never raise on any bytes. Usage: see fuzz/README.md."""

import inspect
import io

from _common import KnownBugs, TraceconvError, atheris, main

with atheris.instrument_imports(include=["analyzers", "traceconv"]):
    from analyzers import sglang_log

# small blocks reach the block-boundary logic; one process (a worker pool per input is slow)
ONE_PROCESS = {"workers": 1} if "workers" in inspect.signature(sglang_log.parse_log).parameters else {}
# crashes reported to the parser's owner, tolerated while they are open (see fuzz/README.md);
# ("UnicodeDecodeError", "_ranks") was fixed
KNOWN = KnownBugs("sglang_log.py", set())


def test_one_input(data: bytes) -> None:
    try:
        df = sglang_log.parse_log(io.BytesIO(data), block_size=4096, **ONE_PROCESS)
    except TraceconvError:
        return
    except Exception as e:
        if KNOWN.tolerate(e):
            return
        raise
    assert df["line"].is_monotonic_increasing


if __name__ == "__main__":
    main(test_one_input)

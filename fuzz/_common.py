"""Shared plumbing for the atheris fuzz targets (see fuzz/README.md).

Each target feeds bytes to one reader and then writes what it read with both writers; the
only exception allowed out is `traceconv.errors.TraceconvError` (a one-line error for the
user). Anything else -- including a MemoryError or RecursionError -- is a crash libFuzzer
records with the input that caused it.
"""

from __future__ import annotations

import io
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

try:
    import atheris
except ImportError:  # pragma: no cover - a hint instead of a traceback
    sys.exit("fuzzing needs atheris: pip install -e '.[fuzz]'")

with atheris.instrument_imports(include=["traceconv", "analyzers"]):
    from traceconv.errors import TraceconvError
    from traceconv.writers import protowire, write_trace

def write_both(trace) -> None:
    """Both writers must take whatever a reader returned; where the C encoders are built, the
    Perfetto bytes must be the numpy encoders' too."""
    trace.validate()
    for fmt in ("perfetto", "json"):
        out = io.BytesIO()
        try:
            write_trace(trace, out, fmt)
        except TraceconvError:  # a writer may refuse too (e.g. times beyond int64), in one line
            continue
        if fmt == "perfetto" and protowire._wire is not None:
            native, protowire._wire = protowire._wire, None
            try:
                numpy_out = io.BytesIO()
                write_trace(trace, numpy_out, fmt)
            finally:
                protowire._wire = native
            if numpy_out.getvalue() != out.getvalue():
                raise AssertionError("the C encoders wrote other Perfetto bytes than numpy")


class KnownBugs:
    """Crashes already reported to the owner of a reader we do not maintain: (exception type,
    function where it was raised in a file ending with `suffix`, or "*" for any function there).
    They are counted and printed
    at exit instead of stopping the run, so the fuzzer keeps looking for new ones. Remove an
    entry once it is fixed."""

    def __init__(self, suffix: str, known: set[tuple[str, str]]) -> None:
        import atexit
        from collections import Counter

        self.suffix, self.known, self.seen = suffix, known, Counter()
        atexit.register(lambda: self.seen and print(f"known bugs hit (not new crashes): {dict(self.seen)}", flush=True))

    def tolerate(self, e: BaseException) -> bool:
        import traceback

        where = [f.name for f in traceback.extract_tb(e.__traceback__) if f.filename.endswith(self.suffix)]
        key = (type(e).__name__, where[-1] if where else "")
        if where and (key in self.known or (key[0], "*") in self.known):
            self.seen[key] += 1
            return True
        return False


def main(test_one_input, argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


__all__ = ["TraceconvError", "KnownBugs", "write_both", "main", "atheris"]

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
    from traceconv.writers import write_trace

SEEDS = [os.path.join(ROOT, "tests", "bad_inputs", "cases"), os.path.join(ROOT, "fixtures")]


def write_both(trace) -> None:
    """Both writers must take whatever a reader returned."""
    trace.validate()
    for fmt in ("perfetto", "json"):
        write_trace(trace, io.BytesIO(), fmt)


def main(test_one_input, argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


__all__ = ["TraceconvError", "write_both", "main", "atheris", "SEEDS"]

"""traceconv: LLM-serving traces (OpenTelemetry spans, PyTorch profiler traces) → Perfetto.

Not Perfetto's own `traceconv` (which converts *from* Perfetto's format).

    >>> import traceconv
    >>> t = traceconv.read_otel(["otel_trace.jsonl"])
    >>> with open("out.pftrace", "wb") as f:
    ...     traceconv.write_trace(t, f)
"""

from __future__ import annotations

from traceconv.errors import MalformedTraceError, TraceconvError, UnsupportedFormatError
from traceconv.model.trace import Trace
from traceconv.readers import read_kineto, read_otel, read_trace
from traceconv.writers import write_trace

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Trace",
    "read_otel",
    "read_kineto",
    "read_trace",
    "write_trace",
    "TraceconvError",
    "MalformedTraceError",
    "UnsupportedFormatError",
]

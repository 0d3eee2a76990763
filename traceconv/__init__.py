"""traceconv: LLM-serving traces (OpenTelemetry spans, PyTorch profiler traces) → Perfetto.

Not Perfetto's own `traceconv` (which converts *from* Perfetto's format).

    >>> import traceconv
    >>> t = traceconv.read_otel(["otel_trace.jsonl"])
    >>> with open("out.pftrace", "wb") as f:
    ...     traceconv.write_trace(t, f)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from traceconv._lazy import lazy_attributes
from traceconv.errors import MalformedTraceError, TraceconvError, UnsupportedFormatError

if TYPE_CHECKING:  # (for type checkers and editors; at run time see `__getattr__`)
    from traceconv.model.trace import Trace
    from traceconv.readers import read_kineto, read_otel, read_trace
    from traceconv.writers import write_trace

__version__ = "0.1.0"

# the API, imported at first use: `traceconv --version` or one reader need not load them all
__getattr__ = lazy_attributes(__name__, {"Trace": "traceconv.model.trace", "read_otel": "traceconv.readers",
                                         "read_kineto": "traceconv.readers", "read_trace": "traceconv.readers",
                                         "write_trace": "traceconv.writers"})

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

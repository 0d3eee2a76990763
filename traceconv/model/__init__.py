"""The columnar trace model (Arrow tables, int64 ns)."""

from traceconv.model.trace import INSTANT, ArgKind, StringPool, Trace, TraceBuilder, TrackKind

__all__ = ["INSTANT", "ArgKind", "StringPool", "Trace", "TraceBuilder", "TrackKind"]

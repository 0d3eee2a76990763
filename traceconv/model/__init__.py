"""The columnar trace model (numpy columns, Arrow tables at first use; int64 ns)."""

from traceconv.model.trace import INSTANT, ArgKind, StringPool, Trace, TraceBuilder, TrackKind

__all__ = ["INSTANT", "ArgKind", "StringPool", "Trace", "TraceBuilder", "TrackKind"]

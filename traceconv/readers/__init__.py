"""Readers: inputs (paths or binary streams) → `Trace`."""

from __future__ import annotations

from traceconv.readers.otel_dump import read_otel

__all__ = ["read_otel"]

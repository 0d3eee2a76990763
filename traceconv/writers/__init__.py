"""Writers: `Trace` → a binary stream, chosen by format name or file suffix."""

from __future__ import annotations

from typing import BinaryIO, Callable

from traceconv.model.trace import Trace
from traceconv.writers.chrome_json import write_chrome_json
from traceconv.writers.perfetto import write_perfetto

WRITERS: dict[str, Callable[[Trace, BinaryIO], dict]] = {
    "perfetto": write_perfetto,
    "json": write_chrome_json,
}
SUFFIXES = {
    ".pftrace": "perfetto",
    ".perfetto-trace": "perfetto",
    ".pb": "perfetto",
    ".json": "json",
    ".json.gz": "json",
}


def format_for_path(path: str, default: str = "perfetto") -> str:
    lower = path.lower()
    for suffix, fmt in sorted(SUFFIXES.items(), key=lambda kv: -len(kv[0])):
        if lower.endswith(suffix):
            return fmt
    return default


def write_trace(trace: Trace, out: BinaryIO, format: str = "perfetto", *, workers: int = 1) -> dict:
    """Write `trace` to the binary stream `out` as ``perfetto`` protobuf or Chrome ``json``
    (`workers`: processes encoding Perfetto packets)."""
    if format == "perfetto":
        return write_perfetto(trace, out, workers=workers)
    return WRITERS[format](trace, out)


__all__ = ["WRITERS", "SUFFIXES", "format_for_path", "write_trace"]

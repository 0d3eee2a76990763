"""Readers: inputs (paths or binary streams) → `Trace`, the format sniffed from the bytes."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from traceconv._lazy import lazy_attributes
from traceconv.errors import UnsupportedFormatError
from traceconv.model.trace import Trace
from traceconv.readers.otel_dump import read_otel
from traceconv.readers.source import SQLITE_MAGIC, open_source

if TYPE_CHECKING:
    from traceconv.readers.kineto import read_kineto
    from traceconv.readers.nsys import read_nsys
    from traceconv.readers.parquet import is_dataset, read_dataset

# imported at first use, so that reading one format loads only its reader (memory, start time)
__getattr__ = lazy_attributes(__name__, {"read_kineto": f"{__name__}.kineto", "read_nsys": f"{__name__}.nsys",
                                         "read_dataset": f"{__name__}.parquet", "is_dataset": f"{__name__}.parquet"})


def sniff(src) -> str:
    """``dataset``, ``otel``, ``kineto`` or ``nsys`` (an Nsight Systems SQLite export) for a
    path (reads the first 64 KB, decompressed)."""
    from traceconv.readers.parquet import is_dataset

    if isinstance(src, (str, os.PathLike)) and is_dataset(src):
        return "dataset"
    if isinstance(src, (str, os.PathLike)) and os.path.isfile(src):
        with open(src, "rb") as f:
            if f.read(16) == SQLITE_MAGIC:
                return "nsys"
    source = open_source(src)
    try:
        head = source.peek(1 << 16)
    finally:
        source.close()
    if head[:16] == SQLITE_MAGIC:
        return "nsys"
    text = head.lstrip()
    if text[:1] in (b"{", b"[") and b"traceEvents" in head:
        return "kineto"
    if text[:1] == b"[" and (b'"ph"' in head or b'"ph":' in head):
        return "kineto"
    return "otel"


def read_trace(inputs, *, rank_from: str | None = None) -> Trace:
    """Read traces of any supported kind (OTel dumps, Kineto/Chrome JSON, Nsight Systems
    SQLite exports) into one `Trace`.

    `inputs` is a path or a list of paths; OTel dumps are read together (so rotated files
    join up), each Kineto file becomes one rank process, each nsys export one process per
    profiled process.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    otel, kineto, datasets, nsys = [], [], [], []
    for p in inputs:
        kind = sniff(p)
        (kineto if kind == "kineto" else datasets if kind == "dataset" else nsys if kind == "nsys" else otel).append(p)
    from traceconv.readers.kineto import read_kineto
    from traceconv.readers.nsys import read_nsys
    from traceconv.readers.parquet import read_dataset

    parts = [read_dataset(p) for p in datasets] + [read_kineto(p, rank_from=rank_from) for p in kineto]
    parts += [read_nsys(p) for p in nsys]
    if otel:
        parts.append(read_otel(otel))
    if not parts:
        raise UnsupportedFormatError("no input")
    from traceconv.model.merge import concat

    return concat(parts)


__all__ = ["read_otel", "read_kineto", "read_dataset", "read_nsys", "read_trace", "sniff"]

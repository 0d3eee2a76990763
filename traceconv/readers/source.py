"""Opening inputs: paths or binary streams, gzip/zstd sniffed by magic bytes, damage recorded.

A damaged compressed stream (truncated or corrupt tail) reads as an early end of file; the
reader then salvages what came before and `Source.damage` says what happened.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

from traceconv.errors import MalformedTraceError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20


@dataclass
class Source:
    """A readable input: `stream` yields the decompressed bytes."""

    name: str
    stream: io.BufferedReader
    compression: str | None = None
    size: int | None = None  # size on disk, when known
    damage: list[str] = field(default_factory=list)
    _raw: BinaryIO | None = None

    def peek(self, n: int = 64) -> bytes:
        return self.stream.peek(n)[:n]

    def close(self) -> None:
        self.stream.close()
        if self._raw is not None:
            self._raw.close()


def open_source(src: str | os.PathLike | BinaryIO, name: str | None = None) -> Source:
    """Open a path or wrap a binary stream, undoing gzip/zstd compression (sniffed, not by suffix)."""
    if isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        name = name or path
        try:
            raw: BinaryIO = open(path, "rb")
        except IsADirectoryError:
            raise MalformedTraceError("is a directory, not a trace file", source=name) from None
        except OSError as e:
            raise MalformedTraceError(e.strerror or str(e), source=name) from None
        size = os.fstat(raw.fileno()).st_size
    else:
        raw = src
        name = name or getattr(src, "name", "<stream>")
        size = None
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(_Passthrough(raw), CHUNK)
    source = Source(str(name), buffered, size=size, _raw=raw)
    _decompress(source)
    return source


def _decompress(source: Source) -> None:
    head = source.stream.peek(4)[:4]
    if head.startswith(GZIP_MAGIC):
        source.compression = "gzip"
        source.stream = io.BufferedReader(_Guarded(gzip.GzipFile(fileobj=source.stream), source, "gzip"), CHUNK)
    elif head == ZSTD_MAGIC:
        import zstandard

        source.compression = "zstd"
        reader = zstandard.ZstdDecompressor().stream_reader(source.stream, read_across_frames=True)
        source.stream = io.BufferedReader(_Guarded(reader, source, "zstd"), CHUNK)


class _Passthrough(io.RawIOBase):
    def __init__(self, f: BinaryIO) -> None:
        self.f = f

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.f.read(len(b))
        b[: len(data)] = data
        return len(data)


class _Guarded(io.RawIOBase):
    """Turns a decompressor failure into end-of-file plus a note in `source.damage`."""

    def __init__(self, inner, source: Source, kind: str) -> None:
        self.inner = inner
        self.source = source
        self.kind = kind
        self.pos = 0
        self.failed = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self.failed:
            return 0
        try:
            data = self.inner.read(len(b))
        except (EOFError, OSError, zlib.error, gzip.BadGzipFile) as e:
            return self._fail(e)
        except Exception as e:  # zstandard.ZstdError and friends
            if type(e).__name__ == "ZstdError":
                return self._fail(e)
            raise
        b[: len(data)] = data
        self.pos += len(data)
        return len(data)

    def _fail(self, e: Exception) -> int:
        self.failed = True
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        self.source.damage.append(f"{self.kind} stream damaged after {self.pos} decompressed bytes ({reason})")
        return 0
